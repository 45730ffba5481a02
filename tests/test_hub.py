"""snnzoo.hub and snnzoo.publish against a local Hub-compatible server (tests/hub_server.py).

huggingface_hub reads HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE and HF_HUB_DISABLE_XET once, into
huggingface_hub.constants, when it is imported. The `hub_env` fixture sets them and reloads that
module (the rest of huggingface_hub looks them up there at call time); the command-line test runs
in a subprocess that reads them at import like any user's process. Xet is disabled because the
test server speaks only plain HTTP and the LFS batch API.
"""

import hashlib
import importlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch
from huggingface_hub import constants

from conftest import assert_equal
from hub_server import HubServer
from snnzoo.hub import (
    WEIGHTS_SHA256_KEY,
    HubUnreachableError,
    WeightsIntegrityError,
    WeightsNotFoundError,
    download_weights,
    file_sha256,
    load_state_dict,
    save_pretrained,
    validate_model_folder,
)
from snnzoo.publish import main as publish_main
from snnzoo import hub as hub_module

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_test_write_token_do_not_print_0123456789"
REPO = "snnzoo-test/tiny"
ARCHITECTURE = "test_resnet"  # a small timm test model: the folder checks do not depend on the architecture
HUB_ENV_VARS = ("HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_XET_CACHE",
                "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                "HF_TOKEN_PATH", "HF_STORED_TOKENS_PATH", "HF_HUB_DISABLE_XET", "HF_HUB_ETAG_TIMEOUT",
                "HF_HUB_DOWNLOAD_TIMEOUT")


@pytest.fixture
def hub_env(tmp_path):
    """configure(endpoint, **more_env): point huggingface_hub at `endpoint` with a fresh HF_HOME."""
    saved = dict(os.environ)

    def configure(endpoint: str, **more_env: str) -> None:
        for name in HUB_ENV_VARS:
            os.environ.pop(name, None)
        os.environ.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_DISABLE_XET="1",
                          HF_HUB_DISABLE_TELEMETRY="1", **more_env)
        importlib.reload(constants)

    yield configure
    os.environ.clear()
    os.environ.update(saved)
    importlib.reload(constants)


@pytest.fixture
def server(tmp_path, hub_env):
    with HubServer(tmp_path / "server", token=TOKEN) as running:
        hub_env(running.url)
        yield running


def tiny_state_dict() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
            "conv.bias": torch.randn(4, generator=generator),
            "counts": torch.arange(7, dtype=torch.int64)}


def tiny_weights() -> bytes:
    return safetensors.torch.save(tiny_state_dict(), metadata={"format": "pt"})


def assert_same_tensors(actual: dict, expected: dict) -> None:
    assert sorted(actual) == sorted(expected), f"keys differ: {sorted(actual)} vs {sorted(expected)}"
    for key in expected:
        assert actual[key].dtype == expected[key].dtype, \
            f"{key}: dtype {actual[key].dtype} != {expected[key].dtype}"
        assert_equal(actual[key], expected[key], key)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def saved_model_folder(directory: Path, num_classes: int = 5):
    model = timm.create_model(ARCHITECTURE, num_classes=num_classes)
    return model, save_pretrained(model, directory)


# Downloading and loading


def test_download_and_load(server, tmp_path):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    path = download_weights(REPO, sha256=hashlib.sha256(tiny_weights()).hexdigest())
    assert path.is_relative_to(tmp_path / "hf_home"), f"{path} is not in HF_HOME"
    assert_same_tensors(load_state_dict(path, sha256=file_sha256(path), source=REPO), tiny_state_dict())


@pytest.mark.parametrize("hub_gone", ["offline", "server_stopped"])
def test_second_load_comes_from_the_cache(server, hub_env, hub_gone):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    first = download_weights(REPO)
    if hub_gone == "offline":
        hub_env(server.url, HF_HUB_OFFLINE="1")
    else:
        server.stop()
    requests_before = len(server.requests)
    start = time.monotonic()
    second = download_weights(REPO)
    assert second == first
    assert time.monotonic() - start < 10, "a cached file must not wait for retries"
    if hub_gone == "offline":
        assert server.requests[requests_before:] == [], "offline mode must not contact the Hub"
    assert_same_tensors(load_state_dict(second), tiny_state_dict())


@pytest.mark.parametrize("what, call", [
    ("repo", dict(repo_id="snnzoo-test/no-such-repo")),
    ("file", dict(repo_id=REPO, filename="other.safetensors")),
    ("revision", dict(repo_id=REPO, revision="no-such-branch")),
])
def test_missing_repo_file_or_revision(server, what, call):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    with pytest.raises(WeightsNotFoundError) as raised:
        download_weights(**call)
    message = str(raised.value)
    for expected in (call["repo_id"], call.get("filename", "model.safetensors"), "pretrained_cfg_overlay"):
        assert expected in message, f"missing {what}: {expected!r} not in error: {message}"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, \
        "expected one error, not a chain"


def test_private_repo_needs_hf_token(server, hub_env):
    server.create_repo(REPO, private=True)
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    with pytest.raises(WeightsNotFoundError, match="HF_TOKEN"):
        download_weights(REPO)
    hub_env(server.url, HF_TOKEN=TOKEN)
    assert_same_tensors(load_state_dict(download_weights(REPO)), tiny_state_dict())


def test_pickle_files_are_never_fetched(server, tmp_path):
    with pytest.raises(ValueError, match="only loads .safetensors"):
        download_weights(REPO, filename="pytorch_model.bin")
    assert server.requests == []
    (tmp_path / "model.pth").write_bytes(b"not even looked at")
    with pytest.raises(ValueError, match="never pickle"):
        load_state_dict(tmp_path / "model.pth")


def test_unreachable_hub_with_cold_cache_fails_fast(hub_env):
    hub_env(closed_port_url())
    start = time.monotonic()
    with pytest.raises(HubUnreachableError) as raised:
        download_weights(REPO, model_name="snasnet_tiny")
    elapsed = time.monotonic() - start
    assert elapsed < 10, f"took {elapsed:.1f} s: retries were not bounded"
    message = str(raised.value)
    for expected in (REPO, "model.safetensors", "cannot reach the Hub",
                     "create_model('snasnet_tiny', pretrained=True, "
                     "pretrained_cfg_overlay=dict(file=\"path/to/model.safetensors\"))"):
        assert expected in message, f"{expected!r} not in error: {message}"


def test_offline_with_cold_cache_says_so(server, hub_env):
    hub_env(server.url, HF_HUB_OFFLINE="1")
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE is set"):
        download_weights(REPO)


def test_server_error_with_cold_cache_fails_fast(server):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    server.outage_status = 503
    start = time.monotonic()
    with pytest.raises(HubUnreachableError, match="HTTP 503"):
        download_weights(REPO)
    assert time.monotonic() - start < 10, "5xx answers must not be retried for half a minute"


# Integrity


def test_sha256_mismatch(server):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    wrong = "0" * 64
    with pytest.raises(WeightsIntegrityError) as raised:
        download_weights(REPO, sha256=wrong)
    message = str(raised.value)
    path = download_weights(REPO)
    for expected in (wrong, file_sha256(path), str(path.resolve()), "force_download=True", REPO):
        assert expected in message, f"{expected!r} not in error: {message}"
    with pytest.raises(WeightsIntegrityError, match=wrong):
        load_state_dict(path, sha256=wrong, source=REPO)


def test_truncated_file_on_the_server(server):
    truncated = tiny_weights()[:-40]
    server.commit_files(REPO, {"model.safetensors": truncated})
    path = download_weights(REPO)  # the Hub announced exactly these bytes
    with pytest.raises(WeightsIntegrityError) as raised:
        load_state_dict(path, source=REPO)
    message = str(raised.value)
    for expected in (str(path), REPO, "corrupted or truncated", "force_download=True"):
        assert expected in message, f"{expected!r} not in error: {message}"


def test_corrupted_file_on_the_server(server):
    weights = tiny_weights()
    server.commit_files(REPO, {"model.safetensors": weights})
    server.replace_stored_bytes(REPO, "model.safetensors", weights[:-8] + b"\xff" * 8)
    with pytest.raises(WeightsIntegrityError) as raised:
        download_weights(REPO)  # no sha256 given: checked against the one the Hub announced
    assert hashlib.sha256(weights).hexdigest() in str(raised.value)


def test_file_shorter_than_announced_on_the_server(server):
    weights = tiny_weights()
    server.commit_files(REPO, {"model.safetensors": weights})
    server.replace_stored_bytes(REPO, "model.safetensors", weights[:-40])
    with pytest.raises(WeightsIntegrityError, match="wrong size") as raised:
        download_weights(REPO)
    assert REPO in str(raised.value) and "force_download=True" in str(raised.value)


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate"])
def test_damaged_file_in_the_cache(server, damage):
    server.commit_files(REPO, {"model.safetensors": tiny_weights()})
    path = download_weights(REPO)
    blob = path.resolve()
    data = blob.read_bytes()
    blob.write_bytes(data[:-8] + b"\xff" * 8 if damage == "flip_bytes" else data[: len(data) // 2])
    with pytest.raises(WeightsIntegrityError) as raised:
        download_weights(REPO)
    assert str(blob) in str(raised.value) and "force_download=True" in str(raised.value)
    if damage == "truncate":
        with pytest.raises(WeightsIntegrityError, match="corrupted or truncated"):
            load_state_dict(path)
    repaired = download_weights(REPO, force_download=True)
    assert_same_tensors(load_state_dict(repaired), tiny_state_dict())


# Saving and validating a model folder


def test_save_pretrained_writes_a_valid_folder(tmp_path):
    model, folder = saved_model_folder(tmp_path / "model_cards" / "tiny")
    assert sorted(path.name for path in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == ARCHITECTURE and config["num_classes"] == 5
    assert config["pretrained_cfg"][WEIGHTS_SHA256_KEY] == file_sha256(folder / "model.safetensors")
    with safetensors.safe_open(folder / "model.safetensors", "pt") as weights:
        assert weights.metadata() == {"format": "pt"}
    assert_same_tensors(load_state_dict(folder / "model.safetensors"), model.state_dict())
    assert validate_model_folder(folder) == []


def test_save_pretrained_replaces_atomically(tmp_path, monkeypatch):
    folder = tmp_path / "tiny"
    model, _ = saved_model_folder(folder)
    card = "---\nlibrary_name: timm\nlicense: apache-2.0\n---\nHand-written card.\n"
    (folder / "README.md").write_text(card)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with monkeypatch.context() as patch:
        patch.setattr("snnzoo.hub.save_config_for_hf", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            save_pretrained(model, folder)
    after = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert after == before, "an interrupted save changed the folder"
    save_pretrained(model, folder, extra_files={"results.json": b"{}"})
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"], "temporary folders were left behind"
    assert "Hand-written card." in (folder / "README.md").read_text(), "the existing card was not kept"
    assert (folder / "results.json").read_bytes() == b"{}"
    with pytest.raises(ValueError, match="pickle"):
        save_pretrained(model, folder, extra_files={"optimizer.pt": b""})


def edit_json(path: Path, **changes) -> None:
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def record_sha256(folder: Path, sha256: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"][WEIGHTS_SHA256_KEY] = sha256
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage, expected", [
    (lambda folder: (folder / "README.md").unlink(), "README.md is missing"),
    (lambda folder: (folder / "README.md").write_text("# no front matter\n"), "no YAML front matter"),
    (lambda folder: (folder / "README.md").write_text("---\nlicense: [unclosed\n---\n"), "not valid YAML"),
    (lambda folder: (folder / "README.md").write_text("---\nlibrary_name: timm\n---\n"), "no 'license'"),
    (lambda folder: (folder / "README.md").write_text("---\nlibrary_name: timm\nlicense: mit\n---\n"),
     "make them agree"),
    (lambda folder: (folder / "extra.bin").write_bytes(b"pickle"), "extra.bin is a pickle-based file"),
    (lambda folder: (folder / "config.json").write_text("{"), "not valid JSON"),
    (lambda folder: edit_json(folder / "config.json", architecture=None), "no 'architecture'"),
    (lambda folder: record_sha256(folder, "1" * 64), "but config.json records"),
    (lambda folder: edit_json(folder / "config.json", architecture="no_such_model"), "failed"),
    (lambda folder: edit_json(folder / "config.json", num_classes=7, model_args={"num_classes": 7}),
     "fc.weight (5, 96) vs (7, 96)"),
])
def test_validate_model_folder_finds_problems(tmp_path, damage, expected):
    _, folder = saved_model_folder(tmp_path / "tiny")
    damage(folder)
    problems = validate_model_folder(folder)
    assert any(expected in problem for problem in problems), f"{expected!r} not in {problems}"


def test_validate_model_folder_says_a_missing_folder_does_not_exist(tmp_path):
    (tmp_path / "file").write_text("x")
    assert validate_model_folder(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'} does not exist"]
    assert validate_model_folder(tmp_path / "file") == [f"{tmp_path / 'file'} is not a directory"]


def test_validate_model_folder_finds_missing_and_unexpected_keys(tmp_path):
    model, folder = saved_model_folder(tmp_path / "tiny")
    state_dict = dict(model.state_dict())
    state_dict.pop("fc.bias")
    state_dict["extra.weight"] = torch.zeros(1)
    safetensors.torch.save_file(state_dict, folder / "model.safetensors", metadata={"format": "pt"})
    record_sha256(folder, file_sha256(folder / "model.safetensors"))
    problems = validate_model_folder(folder)
    assert any("1 key(s) missing: fc.bias" in problem for problem in problems), problems
    assert any("extra.weight" in problem for problem in problems), problems


# Publishing


def test_publish_then_download_round_trip(server, tmp_path):
    model, folder = saved_model_folder(tmp_path / "model_cards" / "tiny")
    result = subprocess.run(
        [sys.executable, "-m", "snnzoo.publish", str(folder), "--repo-id", REPO, "--token", TOKEN],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{server.url}/{REPO}" in result.stdout
    assert TOKEN not in output
    assert server.list_files(REPO) == ["README.md", "config.json", "model.safetensors"]
    commits = [request for request in server.requests if "/commit/" in request]
    assert len(commits) == 1, f"expected one commit, got {commits}"
    assert any(request.startswith("PUT /_lfs/") for request in server.requests), \
        "the weights did not go through the LFS upload"
    path = download_weights(REPO, sha256=file_sha256(folder / "model.safetensors"))
    assert_same_tensors(load_state_dict(path, source=REPO), model.state_dict())


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # huggingface_hub's LFS upload
def test_publish_to_a_branch_of_an_existing_repo(server, tmp_path, capsys):
    _, folder = saved_model_folder(tmp_path / "tiny")
    server.commit_files(REPO, {"notes.txt": b"already here"})
    assert publish_main([str(folder), "--repo-id", REPO, "--revision", "v1", "--token", TOKEN]) == 0
    assert f"{server.url}/{REPO}/tree/v1" in capsys.readouterr().out
    assert server.list_files(REPO, "v1") == ["README.md", "config.json", "model.safetensors", "notes.txt"]
    assert server.list_files(REPO) == ["notes.txt"]


def test_dry_run_uploads_nothing(server, tmp_path, capsys):
    _, folder = saved_model_folder(tmp_path / "tiny")
    assert publish_main([str(folder), "--repo-id", REPO, "--dry-run", "--token", TOKEN]) == 0
    output = capsys.readouterr().out
    for name in ("README.md", "config.json", "model.safetensors", "MiB", "Nothing was uploaded"):
        assert name in output, f"{name!r} not in dry-run output:\n{output}"
    assert server.requests == [], f"a dry run contacted the Hub: {server.requests}"
    assert TOKEN not in output


@pytest.mark.parametrize("damage, expected", [
    (lambda folder: (folder / "optimizer.bin").write_bytes(b"pickle"), "optimizer.bin is a pickle-based"),
    (lambda folder: record_sha256(folder, "1" * 64), "but config.json records"),
])
def test_publish_refuses_a_bad_folder(server, tmp_path, capsys, damage, expected):
    _, folder = saved_model_folder(tmp_path / "tiny")
    damage(folder)
    assert publish_main([str(folder), "--repo-id", REPO, "--token", TOKEN]) == 1
    error = capsys.readouterr().err
    assert "Refusing to publish" in error and expected in error, error
    assert server.requests == [], f"a refused folder reached the Hub: {server.requests}"


def test_publish_failure_does_not_print_the_token(server, tmp_path, capsys):
    _, folder = saved_model_folder(tmp_path / "tiny")
    wrong_token = TOKEN[::-1]
    assert publish_main([str(folder), "--repo-id", REPO, "--token", wrong_token]) == 1
    captured = capsys.readouterr()
    assert "Could not publish" in captured.err, captured.err
    assert "the Hub refused the token (HTTP 401" in captured.err, captured.err
    assert wrong_token not in captured.out + captured.err
    assert REPO not in server.repos


def test_publish_without_a_token_says_how_to_give_one(server, tmp_path, capsys):
    _, folder = saved_model_folder(tmp_path / "tiny")
    assert publish_main([str(folder), "--repo-id", REPO]) == 1
    error = capsys.readouterr().err
    assert "No Hub token" in error and "--token, set HF_TOKEN, or run `hf auth login`" in error, error
    assert server.requests == [], f"publishing without a token reached the Hub: {server.requests}"


def test_publish_to_an_unreachable_hub_says_so(hub_env, tmp_path, capsys):
    hub_env(closed_port_url())
    _, folder = saved_model_folder(tmp_path / "tiny")
    assert publish_main([str(folder), "--repo-id", REPO, "--token", TOKEN]) == 1
    error = capsys.readouterr().err
    assert "cannot reach the Hub" in error and "HF_ENDPOINT" in error, error
    assert "run the same command again" in error and TOKEN not in error, error


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")  # huggingface_hub's LFS upload
def test_an_interrupted_publish_commits_nothing_and_can_be_run_again(server, tmp_path, capsys,
                                                                     monkeypatch):
    _, folder = saved_model_folder(tmp_path / "tiny")
    server.failing["PUT /_lfs/"] = 507  # the weights' upload fails half-way through the publish
    assert publish_main([str(folder), "--repo-id", REPO, "--token", TOKEN]) == 1
    error = capsys.readouterr().err
    assert "HTTP Error 507" in error or "507" in error, error
    assert "has all of them or none of them: run the same command again" in error, error
    assert server.list_files(REPO) == [], "a failed publish committed files"
    server.failing.clear()
    import huggingface_hub

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", interrupted)
    assert publish_main([str(folder), "--repo-id", REPO, "--token", TOKEN]) == 130
    error = capsys.readouterr().err
    assert "error: interrupted while publishing" in error, error
    assert "run the same command again" in error and "Traceback" not in error, error
    monkeypatch.undo()
    assert publish_main([str(folder), "--repo-id", REPO, "--token", TOKEN]) == 0
    assert server.list_files(REPO) == ["README.md", "config.json", "model.safetensors"]


def test_publish_help(capsys):
    with pytest.raises(SystemExit) as exited:
        publish_main(["--help"])
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    for option in ("--repo-id", "--revision", "--private", "--dry-run", "--token"):
        assert option in help_text, f"{option} not in --help:\n{help_text}"


def test_save_pretrained_can_keep_the_folders_other_files(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "log.csv").write_text("epoch\n1\n")
    (folder / hub_module.WEIGHTS_FILENAME).write_bytes(b"old weights")
    model = timm.create_model(ARCHITECTURE, num_classes=5)
    save_pretrained(model, folder, replace_folder=False)
    assert (folder / "log.csv").read_text() == "epoch\n1\n"
    assert validate_model_folder(folder) == []
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_save_pretrained_never_deletes_what_is_not_a_model_folder(tmp_path):
    model = timm.create_model(ARCHITECTURE, num_classes=5)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "thesis.tex").write_text("months of work")
    with pytest.raises(ValueError, match=r"holds thesis.tex, but no config.json: it is not a model folder"):
        save_pretrained(model, tmp_path / "work")
    assert (tmp_path / "work" / "thesis.tex").read_text() == "months of work"
    (tmp_path / "a_file").write_text("kept")
    with pytest.raises(ValueError, match="is a file, not a model folder"):
        save_pretrained(model, tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "kept"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_file", "work"]
    (tmp_path / "empty").mkdir()
    assert validate_model_folder(save_pretrained(model, tmp_path / "empty")) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["swapped", "set-aside"])
def test_a_kept_card_keeps_its_pictures(tmp_path, monkeypatch, exchange):
    if not exchange:  # systems without renameat2's exchange
        monkeypatch.setattr(hub_module, "_exchange", lambda first, second: False)
    model, folder = saved_model_folder(tmp_path / "tiny")
    card = "---\nlibrary_name: timm\nlicense: apache-2.0\n---\n![cell](cell.png)\n"
    (folder / "README.md").write_text(card)
    (folder / "cell.png").write_bytes(b"png")
    (folder / "old_results.json").write_text("{}")
    save_pretrained(model, folder)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]
    assert sorted(path.name for path in folder.iterdir()) == [
        "README.md", "cell.png", "config.json", "model.safetensors"]
    assert (folder / "cell.png").read_bytes() == b"png"
    assert validate_model_folder(folder) == []


def test_card_links_are_the_files_a_card_shows_or_links():
    card = ("![cell](cell.png) [log](<log file.csv>) ![p](cell%20picture.png) "
            "![d](data:image/png;base64,AAAA) [m](mailto:a@b.c) [h](https://x.org/y.png) "
            "[top](#top) [up](../x.md)\n```python\nspikes = model.edges[\"0_1\"](x)\n```\n"
            "and `f[0](y)` inline")
    assert hub_module._card_links(card) == ["cell picture.png", "cell.png", "log file.csv"]


@pytest.mark.parametrize("damage, expected", [
    (lambda folder: (folder / "README.md").write_bytes(b"---\nlicense: mit\n---\n\xff\n"),
     "README.md is not UTF-8 text"),
    (lambda folder: (folder / "README.md").write_text(
        "---\nlibrary_name: timm\nlicense: apache-2.0\n---\n![cell](cell.png)\n"),
     "README.md links to cell.png, which the folder does not hold"),
    (lambda folder: (folder / "README.md").write_text(
        f"---\nlibrary_name: timm\nlicense: apache-2.0\n---\nsha256 `{'ab' * 32}`\n"),
     f"README.md names sha256 {'ab' * 32}, but model.safetensors has sha256"),
])
def test_validate_model_folder_checks_the_card_against_the_folder(tmp_path, damage, expected):
    _, folder = saved_model_folder(tmp_path / "tiny")
    assert validate_model_folder(folder) == []  # the default card names the right digest
    damage(folder)
    problems = validate_model_folder(folder)
    assert any(expected in problem for problem in problems), f"{expected!r} not in {problems}"


def test_validate_model_folder_reports_weights_changed_after_saving_once(tmp_path):
    # config.json and the default card both name the digest of the weights saved first.
    _, folder = saved_model_folder(tmp_path / "tiny")
    torch.manual_seed(1)
    other = timm.create_model(ARCHITECTURE, num_classes=5)
    safetensors.torch.save_file(other.state_dict(), folder / "model.safetensors", metadata={"format": "pt"})
    problems = validate_model_folder(folder)
    assert len(problems) == 1 and "but config.json records" in problems[0], problems


def test_local_weights_files_that_cannot_be_loaded_say_why(tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"missing.safetensors does not exist"):
        load_state_dict(tmp_path / "missing.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(WeightsNotFoundError, match=r"is a directory, not a weights file: pass the "
                                                   r"file in it, .*folder.safetensors/model.safetensors"):
        load_state_dict(tmp_path / "folder.safetensors")
    (tmp_path / "cut.safetensors").write_bytes(tiny_weights()[:100])
    with pytest.raises(WeightsIntegrityError, match=r"corrupted or truncated. Write it again") as raised:
        load_state_dict(tmp_path / "cut.safetensors")
    assert "download" not in str(raised.value), "a local file is not downloaded again"


def test_saving_other_weights_into_a_folder_keeps_its_card_true(tmp_path):
    _, folder = saved_model_folder(tmp_path / "tiny")
    torch.manual_seed(1)
    other = timm.create_model(ARCHITECTURE, num_classes=5)
    save_pretrained(other, folder)  # as convert does, twice into one --out
    assert validate_model_folder(folder) == []
    assert file_sha256(folder / "model.safetensors") in (folder / "README.md").read_text()


def test_saved_files_have_the_usual_permissions(tmp_path):
    # safetensors creates its file 0600: a folder shared with others had unreadable weights.
    previous = os.umask(0o022)
    try:
        _, folder = saved_model_folder(tmp_path / "tiny")
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in folder.iterdir()}
    assert modes == {name: 0o644 for name in modes}, modes
    assert folder.stat().st_mode & 0o777 == 0o755
