"""A Hub-compatible HTTP server for tests, built on the standard library only.

It answers the part of the Hugging Face Hub API that huggingface_hub uses to download a file
(`HEAD`/`GET /{repo_id}/resolve/{revision}/{filename}`), to describe a repo (`model_info`,
`list_repo_tree`) and to publish a folder (`create_repo`, `create_branch`, `create_commit`: the
preupload call, the LFS batch API with its upload and verify URLs, and the NDJSON commit).

It never advertises Xet storage (no `X-Xet-*` headers, no `xet` LFS transfer), so downloads use
plain HTTP. Uploads choose Xet on the client side whenever `hf_xet` is installed; clients talking to
this server must set `HF_HUB_DISABLE_XET=1`.

File contents live in a temporary directory, one blob per sha256; repos, branches and commits are
kept in memory. `commit_files` seeds a repo directly, without HTTP, and `replace_stored_bytes`
simulates storage corruption by serving other bytes under an unchanged ETag.
"""

import base64
import hashlib
import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LARGE_FILE_EXTENSIONS = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".onnx", ".npz")
LARGE_FILE_SIZE = 10 * 1024 * 1024
LFS_POINTER_SIZE = 134


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a regular file: what the Hub sends as its ETag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def is_large_file(path: str, size: int, sample: bytes) -> bool:
    """The Hub's rule, roughly: LFS for weight-like extensions, big files and binary content."""
    return path.endswith(LARGE_FILE_EXTENSIONS) or size > LARGE_FILE_SIZE or b"\0" in sample


@dataclass
class StoredFile:
    blob: Path
    size: int
    sha256: str
    git_sha1: str
    lfs: bool


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)  # branch name -> commit oid
    commits: dict[str, dict[str, StoredFile]] = field(default_factory=dict)  # commit oid -> files by path


class HubError(Exception):
    """An error answer: HTTP status, message, X-Error-Code header, other headers and JSON fields."""

    def __init__(self, status: int, message: str, error_code: str | None = None, headers: dict | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.headers = headers or {}
        self.body = body or {}


class HubServer:
    """A Hub on 127.0.0.1 with an ephemeral port, storing blobs under `root`.

    `token`, when set, is required (as `Authorization: Bearer <token>`) for every write and for
    reading private repos. `requests` logs "METHOD path" for each request received. Setting
    `outage_status` (e.g. 503) makes every request fail with that status; `failing` maps the
    start of a "METHOD path" (e.g. "PUT /_lfs/") to the status its requests fail with.
    """

    def __init__(self, root: Path, token: str | None = None):
        self.root = Path(root)
        self.blob_dir = self.root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[str] = []
        self.outage_status: int | None = None
        self.failing: dict[str, int] = {}
        self.lock = threading.RLock()
        self._commit_count = 0
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.hub = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join()
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # Direct access, for seeding and inspecting repos without HTTP.

    def create_repo(self, repo_id: str, private: bool = False) -> Repo:
        with self.lock:
            if repo_id in self.repos:
                raise HubError(409, f"You already created this model repo: {repo_id}")
            repo = self.repos[repo_id] = Repo(private=private)
            self._new_commit(repo, "main", {}, "initial commit")
            return repo

    def commit_files(self, repo_id: str, files: dict[str, bytes], revision: str = "main",
                     message: str = "seed files") -> str:
        """Add or replace `files` on branch `revision`, creating the repo if needed; return the commit oid."""
        with self.lock:
            repo = self.repos.get(repo_id) or self.create_repo(repo_id)
            parent = repo.branches.get(revision) or repo.branches["main"]
            tree = dict(repo.commits[parent])
            for path, data in files.items():
                tree[path] = self._store(data, lfs=is_large_file(path, len(data), data[:512]))
            return self._new_commit(repo, revision, tree, message)

    def read_file(self, repo_id: str, path: str, revision: str = "main") -> bytes:
        return self._tree(repo_id, revision)[path].blob.read_bytes()

    def list_files(self, repo_id: str, revision: str = "main") -> list[str]:
        return sorted(self._tree(repo_id, revision))

    def replace_stored_bytes(self, repo_id: str, path: str, data: bytes, revision: str = "main") -> None:
        """Serve `data` for `path` while still announcing the original sha256, size and ETag."""
        stored = self._tree(repo_id, revision)[path]
        corrupted = self.blob_dir / f"{stored.sha256}.corrupted"
        corrupted.write_bytes(data)
        stored.blob = corrupted

    # Internals shared with the request handler.

    def _store(self, data: bytes, lfs: bool) -> StoredFile:
        sha256 = hashlib.sha256(data).hexdigest()
        blob = self.blob_dir / sha256
        if not blob.exists():
            blob.write_bytes(data)
        return StoredFile(blob=blob, size=len(data), sha256=sha256, git_sha1=git_blob_sha1(data), lfs=lfs)

    def _new_commit(self, repo: Repo, branch: str, tree: dict[str, StoredFile], message: str) -> str:
        self._commit_count += 1
        listing = "\n".join(f"{path} {stored.sha256}" for path, stored in sorted(tree.items()))
        oid = hashlib.sha1(f"{self._commit_count}\n{message}\n{listing}".encode()).hexdigest()
        repo.commits[oid] = tree
        repo.branches[branch] = oid
        return oid

    def _repo(self, repo_id: str, authorized: bool) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, revision: str) -> str:
        if revision in repo.branches:
            return repo.branches[revision]
        if revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _tree(self, repo_id: str, revision: str) -> dict[str, StoredFile]:
        repo = self.repos[repo_id]
        return repo.commits[self._resolve(repo, revision)]


def _split_repo_path(segments: list[str], marker: str) -> tuple[str, list[str]]:
    """Split ["org", "name", marker, ...] (or ["name", marker, ...]) into repo_id and the rest."""
    for length in (2, 1):
        if len(segments) > length and segments[length] == marker:
            return "/".join(segments[:length]), segments[length + 1:]
    raise HubError(404, "Not found")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TestHub/1.0"

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_HEAD(self):
        self._dispatch()

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    # Plumbing

    def _dispatch(self) -> None:
        self._body = None
        split = urlsplit(self.path)
        self.query = parse_qs(split.query)
        raw_segments = [segment for segment in split.path.split("/") if segment]
        segments = [unquote(segment) for segment in raw_segments]
        with self.hub.lock:
            self.hub.requests.append(f"{self.command} {split.path}")
        try:
            if self.hub.outage_status is not None:
                raise HubError(self.hub.outage_status, "The Hub is unavailable")
            for start, status in self.hub.failing.items():
                if f"{self.command} {split.path}".startswith(start):
                    self._read_body()  # answer only once the client has sent it all
                    raise HubError(status, "The request failed")
            self._route(segments)
        except HubError as error:
            self._send_error(error)

    def _route(self, segments: list[str]) -> None:
        method = self.command
        if segments[:1] == ["api"]:
            if segments[1:3] == ["repos", "create"] and method == "POST":
                return self._create_repo()
            if segments[1:2] == ["validate-yaml"] and method == "POST":
                return self._send_json({"errors": [], "warnings": []})
            if segments[1:2] == ["models"]:
                return self._route_model_api(segments[2:])
            raise HubError(404, "Not found")
        if segments[:1] == ["_lfs"]:
            if method == "PUT" and len(segments) == 2:
                return self._lfs_upload(segments[1])
            if method == "POST" and segments[2:] == ["verify"]:
                return self._lfs_verify(segments[1])
            raise HubError(404, "Not found")
        if len(segments) >= 5 and segments[-4:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            repo_id = "/".join(segments[:-4])
            if repo_id.endswith(".git"):
                return self._lfs_batch(repo_id[: -len(".git")])
        if method in ("HEAD", "GET"):
            repo_id, rest = _split_repo_path(segments, "resolve")
            if len(rest) >= 2:
                return self._resolve_file(repo_id, rest[0], "/".join(rest[1:]))
        raise HubError(404, "Not found")

    def _route_model_api(self, segments: list[str]) -> None:
        method = self.command
        for marker, handler, methods in (
            ("revision", self._model_info, ("GET",)),
            ("tree", self._list_tree, ("GET",)),
            ("preupload", self._preupload, ("POST",)),
            ("commit", self._commit, ("POST",)),
            ("branch", self._create_branch, ("POST",)),
        ):
            try:
                repo_id, rest = _split_repo_path(segments, marker)
            except HubError:
                continue
            if method in methods and rest:
                return handler(repo_id, rest[0], "/".join(rest[1:]))
        if method == "GET" and 1 <= len(segments) <= 2:
            return self._model_info("/".join(segments), "main", "")
        raise HubError(404, "Not found")

    @property
    def authorized(self) -> bool:
        """Whether the request carries the server's token (any request does when the server has none)."""
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _require_write_access(self) -> None:
        if self.authorized:
            return
        sent = self.headers.get("Authorization")
        if sent is None:
            raise HubError(401, "Invalid username or password.")
        # The wrong credentials are echoed, as a careless server might, so tests can see clients redact them.
        raise HubError(401, f"Invalid credentials in Authorization header: {sent}")

    def _read_body(self) -> bytes:
        """The request body (read once), whether sent with a Content-Length or chunked."""
        if self._body is None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self._body = b"".join(chunks)
            else:
                self._body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        return self._body

    def _read_json(self):
        try:
            return json.loads(self._read_body() or b"{}")
        except json.JSONDecodeError as error:
            raise HubError(400, f"Invalid JSON body: {error}")

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", content_type)
        headers.setdefault("Content-Length", str(len(body)))
        headers["Connection"] = "close"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.close_connection = True

    def _send_json(self, payload, status: int = 200, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _send_error(self, error: HubError) -> None:
        if self.command in ("POST", "PUT"):
            self._read_body()  # let the client finish sending before it reads the answer
        headers = {"X-Error-Message": str(error), **error.headers}
        if error.error_code is not None:
            headers["X-Error-Code"] = error.error_code
        self._send_json({"error": str(error), **error.body}, status=error.status, headers=headers)

    # Downloads and repo descriptions

    def _resolve_file(self, repo_id: str, revision: str, path: str) -> None:
        with self.hub.lock:
            repo = self.hub._repo(repo_id, self.authorized)
            commit = self.hub._resolve(repo, revision)
            stored = repo.commits[commit].get(path)
        if stored is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit})
        data = stored.blob.read_bytes()
        etag = stored.sha256 if stored.lfs else stored.git_sha1
        headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if stored.lfs:
            headers.update({"X-Linked-Etag": f'"{stored.sha256}"', "X-Linked-Size": str(stored.size)})
        status = 200
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes=") and self.command == "GET":
            start_text, _, end_text = range_header[len("bytes="):].partition("-")
            start = int(start_text or 0)
            end = int(end_text) if end_text else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        headers["Content-Length"] = str(len(data))
        self._send(status, data, headers, content_type="application/octet-stream")

    def _model_info(self, repo_id: str, revision: str, _rest: str) -> None:
        with self.hub.lock:
            repo = self.hub._repo(repo_id, self.authorized)
            commit = self.hub._resolve(repo, revision)
            tree = repo.commits[commit]
        self._send_json({
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": repo.private,
            "tags": [],
            "siblings": [self._sibling(path, stored) for path, stored in sorted(tree.items())],
        })

    @staticmethod
    def _sibling(path: str, stored: StoredFile) -> dict:
        sibling = {"rfilename": path, "size": stored.size, "blobId": stored.git_sha1}
        if stored.lfs:
            sibling["lfs"] = {"size": stored.size, "sha256": stored.sha256, "pointerSize": LFS_POINTER_SIZE}
        return sibling

    def _list_tree(self, repo_id: str, revision: str, folder: str) -> None:
        recursive = self.query.get("recursive", ["false"])[0].lower() in ("1", "true")
        with self.hub.lock:
            repo = self.hub._repo(repo_id, self.authorized)
            tree = repo.commits[self.hub._resolve(repo, revision)]
        prefix = f"{folder}/" if folder else ""
        if folder and not any(path.startswith(prefix) for path in tree):
            raise HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        entries, folders = [], set()
        for path, stored in sorted(tree.items()):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            folders.update(prefix + "/".join(parts[:depth]) for depth in range(1, len(parts)))
            if recursive or len(parts) == 1:
                entry = {"type": "file", "oid": stored.git_sha1, "size": stored.size, "path": path}
                if stored.lfs:
                    entry["lfs"] = {"oid": stored.sha256, "size": stored.size,
                                    "pointerSize": LFS_POINTER_SIZE}
                entries.append(entry)
        if not recursive:
            folders = {name for name in folders if "/" not in name[len(prefix):]}
        entries += [{"type": "directory", "oid": git_blob_sha1(name.encode()), "size": 0, "path": name}
                    for name in sorted(folders)]
        self._send_json(entries)

    # Publishing

    def _create_repo(self) -> None:
        payload = self._read_json()
        self._require_write_access()
        name, organization = payload.get("name"), payload.get("organization")
        repo_id = f"{organization}/{name}" if organization else name
        if payload.get("type") not in (None, "model"):
            raise HubError(400, f"This test Hub only stores model repos, not {payload.get('type')!r}")
        private = payload.get("private") or payload.get("visibility") == "private"
        with self.hub.lock:
            if repo_id in self.hub.repos:
                raise HubError(409, "You already created this model repo",
                               body={"url": f"{self.hub.url}/{repo_id}"})
            self.hub.create_repo(repo_id, private=bool(private))
        self._send_json({"url": f"{self.hub.url}/{repo_id}", "name": repo_id, "id": repo_id})

    def _create_branch(self, repo_id: str, branch: str, _rest: str) -> None:
        payload = self._read_json()
        self._require_write_access()
        with self.hub.lock:
            repo = self.hub._repo(repo_id, True)
            if branch in repo.branches:
                raise HubError(409, f"Branch {branch} already exists")
            repo.branches[branch] = self.hub._resolve(repo, payload.get("startingPoint") or "main")
        self._send_json({})

    def _preupload(self, repo_id: str, revision: str, _rest: str) -> None:
        payload = self._read_json()
        self._require_write_access()
        with self.hub.lock:
            repo = self.hub._repo(repo_id, True)
            tree = repo.commits[self.hub._resolve(repo, revision)]
        answers = []
        for file in payload.get("files", []):
            sample = base64.b64decode(file.get("sample", ""))
            lfs = is_large_file(file["path"], file["size"], sample)
            existing = tree.get(file["path"])
            oid = None
            if existing is not None:
                oid = existing.sha256 if existing.lfs else existing.git_sha1
            answers.append({"path": file["path"], "uploadMode": "lfs" if lfs else "regular",
                            "shouldIgnore": False, "oid": oid})
        self._send_json({"files": answers, "commitOid": repo.branches.get(revision)})

    def _lfs_batch(self, repo_id: str) -> None:
        payload = self._read_json()
        self._require_write_access()
        with self.hub.lock:
            self.hub._repo(repo_id, True)
        if payload.get("operation") != "upload":
            raise HubError(400, "This test Hub only accepts LFS uploads")
        objects = []
        for item in payload.get("objects", []):
            oid, size = item["oid"], item["size"]
            answer = {"oid": oid, "size": size, "authenticated": True}
            if not (self.hub.blob_dir / oid).exists():
                answer["actions"] = {
                    "upload": {"href": f"{self.hub.url}/_lfs/{oid}", "header": {}},
                    "verify": {"href": f"{self.hub.url}/_lfs/{oid}/verify", "header": {}},
                }
            objects.append(answer)
        body = json.dumps({"transfer": "basic", "objects": objects}).encode()
        self._send(200, body, content_type="application/vnd.git-lfs+json")

    def _lfs_upload(self, oid: str) -> None:
        data = self._read_body()
        actual = hashlib.sha256(data).hexdigest()
        if actual != oid:
            raise HubError(400, f"Uploaded content has sha256 {actual}, expected {oid}")
        with self.hub.lock:
            self.hub._store(data, lfs=True)
        self._send(200)

    def _lfs_verify(self, oid: str) -> None:
        payload = self._read_json()
        blob = self.hub.blob_dir / oid
        if not blob.exists() or blob.stat().st_size != payload.get("size"):
            raise HubError(404, f"LFS object {oid} was not uploaded")
        self._send_json({})

    def _commit(self, repo_id: str, revision: str, _rest: str) -> None:
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        self._require_write_access()
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit body must start with a header line")
        header = lines[0]["value"]
        with self.hub.lock:
            repo = self.hub._repo(repo_id, True)
            parent = self.hub._resolve(repo, revision)
            if header.get("parentCommit") not in (None, parent):
                raise HubError(412, f"Parent commit {header['parentCommit']} is not the head of {revision}")
            tree = dict(repo.commits[parent])
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    tree[value["path"]] = self.hub._store(base64.b64decode(value["content"]), lfs=False)
                elif key == "lfsFile":
                    blob = self.hub.blob_dir / value["oid"]
                    if not blob.exists():
                        raise HubError(422, f"LFS object {value['oid']} for {value['path']} was never "
                                            "uploaded")
                    tree[value["path"]] = self.hub._store(blob.read_bytes(), lfs=True)
                elif key == "deletedFile":
                    tree.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    tree = {path: stored for path, stored in tree.items() if not path.startswith(folder)}
                else:
                    raise HubError(400, f"Unknown commit operation {key!r}")
            branch = revision if revision in repo.branches else None
            if branch is None:
                raise HubError(400, f"Cannot commit on {revision}: not a branch")
            oid = self.hub._new_commit(repo, branch, tree, header.get("summary", ""))
        self._send_json({"success": True, "commitOid": oid, "hookOutput": "", "pullRequestUrl": None,
                         "commitUrl": f"{self.hub.url}/{repo_id}/commit/{oid}"})
