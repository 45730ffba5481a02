"""Publish a model folder to the Hugging Face Hub in one commit.

    python -m snnzoo.publish model_cards/snasnet_fmnist --repo-id snnzoo/snasnet_fmnist --dry-run
    python -m snnzoo.publish model_cards/snasnet_fmnist --repo-id snnzoo/snasnet_fmnist

The folder is checked first (snnzoo.hub.validate_model_folder); a folder with problems is refused
with the list of them. The token is sent to the Hub and nowhere else: it is never printed, logged
or included in an error message.
"""

import argparse
import sys
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import OfflineModeIsEnabled

from snnzoo._messages import first_line
from snnzoo._options import add_debug_option
from snnzoo.hub import PICKLE_SUFFIXES, TransportError, model_folder_files, validate_model_folder

__all__ = ["PublishError", "publish", "main"]


ALL_OR_NONE = ("The files go up in one commit, so the repo has all of them or none of them: "
               "run the same command again (files the Hub already has are not sent again).")


class PublishError(RuntimeError):
    """The folder was refused or the upload failed; the message says why."""


def publish(directory: str | Path, repo_id: str, revision: str | None = None, private: bool = False,
            token: str | None = None, dry_run: bool = False, commit_message: str | None = None) -> str | None:
    """Validate `directory` and upload its files to `repo_id` in one commit; return the repo URL.

    With `dry_run`, print what would be uploaded and return None without contacting the Hub.
    """
    directory = Path(directory)
    problems = validate_model_folder(directory)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise PublishError(f"Refusing to publish {directory}: fix these problems first:\n{listed}")
    files = model_folder_files(directory)
    pickled = [path for path in files if path.name.endswith(PICKLE_SUFFIXES)]
    if pickled:  # validate_model_folder reports these; checked again right before uploading
        raise PublishError(f"Refusing to upload pickle-based files: {', '.join(map(str, pickled))}")
    target = f"{repo_id}" + (f" (revision {revision})" if revision else "")
    if dry_run:
        total = sum(path.stat().st_size for path in files)
        print(f"Dry run: would upload {len(files)} files ({_size(total)}) to {target}:")
        for path in files:
            print(f"  {path.relative_to(directory).as_posix():<40} {_size(path.stat().st_size):>10}")
        print("Nothing was uploaded.")
        return None
    return _upload(directory, files, repo_id, revision, private, token, commit_message)


def _upload(directory: Path, files: list[Path], repo_id: str, revision: str | None, private: bool,
            token: str | None, commit_message: str | None) -> str:
    api = HfApi(token=token)
    token = token or get_token()
    if token is None:
        raise PublishError(f"No Hub token to publish {directory} to {repo_id} with: pass --token, "
                           f"set HF_TOKEN, or run `hf auth login`, with a token that has write "
                           f"access to {repo_id}. Nothing was uploaded.")
    try:
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision is not None and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=path.relative_to(directory).as_posix(),
                                         path_or_fileobj=str(path)) for path in files]
        commit = api.create_commit(repo_id, operations, revision=revision,
                                   commit_message=commit_message or f"Upload {directory.name} with snnzoo")
    except Exception as error:
        raise PublishError(f"Could not publish {directory} to {repo_id} on {api.endpoint}: "
                           f"{_redact(_reason(error, repo_id), token)}. {ALL_OR_NONE}") from None
    url = f"{api.endpoint}/{repo_id}" + (f"/tree/{revision}" if revision else "")
    print(f"Published {len(files)} files to {url} (commit {commit.oid})")
    return url


def _reason(error: Exception, repo_id: str) -> str:
    """What went wrong in a Hub call, and what to do about it; the error's cause (the failed
    request under huggingface_hub's "Error while uploading") is looked at too."""
    cause = error.__cause__ if isinstance(error.__cause__, Exception) else None
    for failure in (error, cause):
        if isinstance(failure, OfflineModeIsEnabled):
            return "HF_HUB_OFFLINE is set: unset it to publish"
        if isinstance(failure, (TransportError, ConnectionError)):
            return f"cannot reach the Hub ({first_line(failure)}): check the network and HF_ENDPOINT"
        status = getattr(getattr(failure, "response", None), "status_code", None)
        if status in (401, 403):
            return (f"the Hub refused the token (HTTP {status}, {first_line(failure)}): check that "
                    f"it is valid and has write access to {repo_id}")
    text = str(error).strip().rstrip(".")
    return f"{text} ({first_line(cause)})" if cause is not None else text


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m snnzoo.publish",
        description="Check a model folder (model.safetensors, config.json, README.md) and upload it to the "
                    "Hugging Face Hub in one commit. Pickle-based files (.pth, .pt, .bin, .pkl) are never "
                    "uploaded: a folder holding one is refused.",
        epilog="The Hub is HF_ENDPOINT (default https://huggingface.co). Without --token, HF_TOKEN or the "
               "token saved by `hf auth login` is used. Exit status: 0 on success, 1 when the folder is "
               "refused or the upload fails, 130 when interrupted. The upload is one commit: after "
               "a failure the repo has all of the files or none, so run the command again.")
    parser.add_argument("directory", type=Path, help="the model folder, e.g. model_cards/snasnet_fmnist")
    parser.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="the Hub repo to publish to")
    parser.add_argument("--revision", metavar="REV",
                        help="branch to commit to (created from main if missing); default: main")
    parser.add_argument("--private", action="store_true",
                        help="create the repo as private (an existing repo keeps its visibility)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the folder and list the files and sizes that would be uploaded; "
                             "upload nothing")
    parser.add_argument("--token", metavar="TOKEN",
                        help="Hub access token with write permission (never printed)")
    parser.add_argument("--message", metavar="TEXT",
                        help="commit message; default: 'Upload <folder> with snnzoo'")
    add_debug_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        publish(args.directory, args.repo_id, revision=args.revision, private=args.private, token=args.token,
                dry_run=args.dry_run, commit_message=args.message)
    except PublishError as error:
        if args.debug:
            raise
        print(f"error: {_redact(str(error), args.token)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"error: interrupted while publishing {args.directory} to {args.repo_id}. "
              f"{ALL_OR_NONE}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
