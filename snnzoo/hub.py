"""Pretrained weights on the Hugging Face Hub: download, verify, load, save and check a model folder.

Only safetensors files are fetched, loaded or written; nothing here unpickles. Downloads go through
huggingface_hub, so its cache and environment variables apply: HF_ENDPOINT, HF_HOME / HF_HUB_CACHE,
HF_HUB_OFFLINE, HF_TOKEN and HF_HUB_ETAG_TIMEOUT (how long to wait for the Hub to answer).

A model folder (model_cards/<name>/ in this repository, one Hub repo once published) holds:

    model.safetensors   the state_dict, metadata {"format": "pt"}
    config.json         timm's Hub config (architecture, num_classes, model_args, pretrained_cfg),
                        the sha256 of model.safetensors in pretrained_cfg[WEIGHTS_SHA256_KEY]
    README.md           the model card, with YAML front matter (library_name, license, tags)
"""

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import unquote

import safetensors
import safetensors.torch
import timm
import torch
import yaml
from huggingface_hub import (
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
# timm's one private name in snnzoo: config.json alone has no public writer (the public
# timm.models.save_for_hf writes the weights too); used by model_config only.
from timm.models._hub import save_config_for_hf

from snnzoo._files import give_new_file_mode
from snnzoo._messages import abbreviated_list, first_line
from snnzoo.cards import create_model_snippet, front_matter, split_front_matter

try:  # huggingface_hub 2.x speaks HTTP through httpx2, 1.x through httpx
    from httpx2 import TransportError
except ImportError:  # pragma: no cover
    from httpx import TransportError

__all__ = [
    "WeightsError", "WeightsNotFoundError", "WeightsIntegrityError", "HubUnreachableError",
    "WEIGHTS_FILENAME", "CONFIG_FILENAME", "CARD_FILENAME", "WEIGHTS_SHA256_KEY", "PICKLE_SUFFIXES",
    "download_weights", "download_config", "load_state_dict", "file_sha256", "save_pretrained", "validate_model_folder",
    "model_folder_files", "move_into_place", "model_config", "config_text",
]

WEIGHTS_FILENAME = "model.safetensors"
CONFIG_FILENAME = "config.json"
CARD_FILENAME = "README.md"
WEIGHTS_SHA256_KEY = "hf_hub_sha256"  # in config.json's pretrained_cfg, as in SNASNet's pretrained cfgs
PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".pkl", ".pickle", ".ckpt")  # never loaded, never published
LOCAL_FILE_HINT = ('create_model({model}, pretrained=True, '
                   'pretrained_cfg_overlay=dict(file="path/to/model.safetensors"))')
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


class WeightsError(OSError):
    """Pretrained weights could not be provided; the message says why and what to do."""


class WeightsNotFoundError(WeightsError):
    """The repo, revision or file does not exist on the Hub (or is private or gated)."""


class WeightsIntegrityError(WeightsError):
    """A weights file is corrupted, truncated or not the one whose sha256 was recorded."""


class HubUnreachableError(WeightsError):
    """The Hub cannot be reached (network down, offline mode, server error) and the file is not cached."""


def download_weights(repo_id: str, filename: str = WEIGHTS_FILENAME, revision: str | None = None,
                     sha256: str | None = None, *, force_download: bool = False,
                     cache_dir: str | Path | None = None, model_name: str | None = None) -> Path:
    """Download a .safetensors file from the Hub (or take it from the cache) and return its local path.

    The file is checked against `sha256` when given; otherwise against the sha256 the Hub announced
    for it (the name of its blob in the cache), when the Hub stores it with LFS. With a cold cache an
    unreachable Hub fails after one attempt, within HF_HUB_ETAG_TIMEOUT seconds, instead of retrying.
    `model_name` only makes the error messages show the exact `create_model` call to use instead.
    """
    if not filename.endswith(".safetensors"):
        raise ValueError(f"Refusing to download {filename!r} from {repo_id}: snnzoo only loads .safetensors "
                         "weights, never pickle-based files (.bin, .pth, .pt). Publish the weights as "
                         "model.safetensors (snnzoo.hub.save_pretrained) and download that.")
    try:
        path = _download(repo_id, filename, revision, cache_dir, force_download, model_name)
    except OSError as error:
        if isinstance(error, WeightsError):
            raise
        if error.errno is not None:
            raise  # the local disk, not the download
        raise WeightsIntegrityError(  # huggingface_hub's size check: fewer or more bytes than announced
            f"Downloading {_describe(repo_id, filename, revision)} gave a file of the wrong size "
            f"({first_line(error)}). Download it again with download_weights(..., force_download=True); "
            "if that keeps failing, the copy on the Hub is damaged: publish it again.") from None
    path = Path(path)
    source = _describe(repo_id, filename, revision)
    expected = sha256 or _announced_sha256(path)
    if expected is not None:
        _check_sha256(path, expected, source)
    return path


def download_config(repo_id: str, revision: str | None = None, *,
                    cache_dir: str | Path | None = None) -> dict:
    """The config.json of a model repo on the Hub (or in the cache), parsed; it fails as
    download_weights does, fast and with one WeightsError that says what to do."""
    path = Path(_download(repo_id, CONFIG_FILENAME, revision, cache_dir, False, None))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        config = error
    if not isinstance(config, dict):
        raise WeightsError(
            f"{_describe(repo_id, CONFIG_FILENAME, revision)} is not a JSON object ({config}), so it "
            f"cannot say which model to build: publish the folder again with `python -m "
            f"snnzoo.publish`, which checks it")
    return config


def _download(repo_id: str, filename: str, revision: str | None, cache_dir, force_download: bool,
              model_name: str | None) -> str:
    """hf_hub_download that fails fast on a cold cache and raises one WeightsError on Hub errors."""
    cached = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    try:
        if force_download or not isinstance(cached, str):
            _check_hub_answers(repo_id, filename, revision)
        return hf_hub_download(repo_id, filename, revision=revision, cache_dir=cache_dir,
                               force_download=force_download,
                               etag_timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except (HfHubHTTPError, EntryNotFoundError, OfflineModeIsEnabled, TransportError) as error:
        raise _weights_error(error, repo_id, filename, revision, model_name) from None


def load_state_dict(path: str | Path, sha256: str | None = None,
                    source: str | None = None) -> dict[str, torch.Tensor]:
    """Load a .safetensors file on the CPU into a dict of tensors, checking its sha256.

    The digest checked is `sha256` when given, else the one its model folder records (the
    config.json beside a model.safetensors, as save_pretrained writes it): whatever records a
    digest is checked on every load. `source` (a repo id or URL) is named in errors. A
    corrupted, truncated or altered file raises WeightsIntegrityError; a pickle-based file is
    refused with ValueError.
    """
    path = Path(path)
    origin = f" (from {source})" if source else ""
    if not path.exists():
        raise WeightsNotFoundError(f"{path}{origin} does not exist: check the path (a model "
                                   f"folder's weights are its {WEIGHTS_FILENAME})")
    if path.is_dir():
        raise WeightsNotFoundError(f"{path} is a directory, not a weights file: pass the file in "
                                   f"it, {path / WEIGHTS_FILENAME}")
    if path.suffix != ".safetensors":
        raise ValueError(f"Refusing to load {path}{origin}: only .safetensors files are loaded, never "
                         "pickle-based checkpoints (.bin, .pth, .pt). Convert it once in a trusted "
                         "environment with safetensors.torch.save_file(torch.load(...)).")
    recorded_in = None
    if sha256 is None:
        sha256 = recorded_sha256(path)
        recorded_in = path.parent / CONFIG_FILENAME if sha256 is not None else None
    if sha256 is not None:
        _check_sha256(path, sha256, source, recorded_in)
    return _read_safetensors(path, source)


def _read_safetensors(path: Path, source: str | None) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(path, device="cpu")
    except safetensors.SafetensorError as error:
        origin = f" (from {source})" if source else ""
        raise WeightsIntegrityError(
            f"{path}{origin} is not a readable safetensors file ({error}): it is corrupted or "
            f"truncated. {_fix_for_damaged(path, source)}") from None


def recorded_sha256(path: str | Path) -> str | None:
    """The sha256 that the model folder of a weights file records for it (config.json's
    pretrained_cfg beside model.safetensors), or None where nothing records one."""
    path = Path(path)
    if path.name != WEIGHTS_FILENAME:
        return None
    try:
        config = json.loads((path.parent / CONFIG_FILENAME).read_text(encoding="utf-8"))
        recorded = config["pretrained_cfg"][WEIGHTS_SHA256_KEY]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return recorded if isinstance(recorded, str) else None


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file as 64 lowercase hex digits, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def save_pretrained(model, directory: str | Path, model_card: str | None = None,
                    extra_files: dict[str, bytes] | None = None, replace_folder: bool = True) -> Path:
    """Write `model` as a model folder (weights, config.json, README.md) and return its path.

    The folder is written next to `directory` under a temporary name, then swapped into place, so an
    interrupted save leaves either the old folder or the new one, never a mix; an existing model
    folder (one with a config.json) is replaced as a whole, and any other non-empty directory or a
    file there is refused, never deleted. Without `model_card`, an existing README.md is kept with
    the files it links to (its pictures), else a minimal card is generated. `extra_files` maps further file names to their contents (e.g. "results.json").
    With `replace_folder=False` only the files written here are replaced, each atomically, and
    the folder's other files stay (a training run's log and checkpoint, say).
    """
    directory = Path(directory).resolve()
    _check_savable(model, directory)
    extra_files = dict(extra_files or {})
    for name in extra_files:
        _check_extra_file_name(name)
    if replace_folder:
        _check_replaceable(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.saving-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        config = _write_weights_and_config(model, staging)
        card = model_card if model_card is not None else _kept_card(directory, staging, config,
                                                                   replace_folder)
        (staging / CARD_FILENAME).write_text(card, encoding="utf-8")
        for name, content in extra_files.items():
            (staging / name).write_bytes(content)
        if replace_folder:
            move_into_place(staging, directory)
        else:
            _move_files_into(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def model_config(model, weights_sha256: str | None) -> dict:
    """timm's Hub config.json of `model` (architecture, num_classes, model_args, pretrained_cfg),
    with the sha256 of its weights file in pretrained_cfg[WEIGHTS_SHA256_KEY]."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / CONFIG_FILENAME
        save_config_for_hf(model, path, model_args=getattr(model, "model_args", None))
        config = json.loads(path.read_text(encoding="utf-8"))
    config["pretrained_cfg"][WEIGHTS_SHA256_KEY] = weights_sha256
    return config


def config_text(config: dict) -> str:
    """config.json's text as save_pretrained writes it."""
    return json.dumps(config, indent=2) + "\n"


def model_folder_files(directory: str | Path) -> list[Path]:
    """The files of a model folder that get published: every regular file, hidden ones excepted."""
    directory = Path(directory)
    return sorted(path for path in directory.rglob("*") if path.is_file()
                  and not any(part.startswith(".") for part in path.relative_to(directory).parts))


def validate_model_folder(directory: str | Path) -> list[str]:
    """Problems that keep a model folder from being published; an empty list means it is ready.

    Checks that the three files exist, that config.json names an architecture and records the sha256
    of model.safetensors, that README.md has front matter with library_name and license, that no
    pickle-based file is present, and that the weights load into timm.create_model(architecture,
    num_classes=..., **model_args) with exactly matching keys and shapes.
    """
    directory = Path(directory)
    if not directory.exists():
        return [f"{directory} does not exist"]
    if not directory.is_dir():
        return [f"{directory} is not a directory"]
    problems = _file_problems(directory)
    config = _read_config(directory, problems)
    weights = directory / WEIGHTS_FILENAME
    actual = file_sha256(weights) if weights.is_file() else None
    recorded = None if config is None else config["pretrained_cfg"].get(WEIGHTS_SHA256_KEY)
    card = _read_card_metadata(directory, problems, actual, recorded)
    problems += _license_problems(card, config)
    if config is None or actual is None:
        return problems
    problems += _digest_problems(recorded, actual)
    return problems + _weights_problems(weights, config)


# Downloads


def _check_hub_answers(repo_id: str, filename: str, revision: str | None) -> None:
    """One HEAD request without retries, so that a cold cache fails fast when the Hub is unreachable.

    hf_hub_download retries five times with back-off (about 25 s) when nothing is cached.
    """
    if constants.is_offline_mode():
        return  # hf_hub_download answers from the cache or fails at once
    url = hf_hub_url(repo_id, filename, revision=revision)
    get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)


def _weights_error(error: Exception, repo_id: str, filename: str, revision: str | None,
                   model_name: str | None) -> WeightsError:
    """Turn a huggingface_hub or network error into one WeightsError that says what to do."""
    where = _describe(repo_id, filename, revision)
    endpoint = constants.ENDPOINT
    model = repr(model_name) if model_name else "name"
    local = "Or load a local copy: " + LOCAL_FILE_HINT.format(model=model)
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, GatedRepoError):
        return WeightsNotFoundError(
            f"Cannot download {where}: {repo_id} is gated on {endpoint}. Accept its conditions on "
            f"{endpoint}/{repo_id} and set HF_TOKEN (or run `hf auth login`). {local}")
    if isinstance(error, RepositoryNotFoundError):
        return WeightsNotFoundError(
            f"Cannot download {where}: repository {repo_id} does not exist on {endpoint}, or it is "
            f"private and no valid token was sent. Check the repo id (hf_hub_id in the model's "
            f"pretrained_cfg), or set HF_TOKEN for a private repo. {local}")
    if isinstance(error, RevisionNotFoundError):
        return WeightsNotFoundError(
            f"Cannot download {where}: revision {revision!r} does not exist in {repo_id} on {endpoint}. "
            f"Use an existing branch, tag or commit. {local}")
    if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled, TransportError)):
        if constants.is_offline_mode():
            reason = "HF_HUB_OFFLINE is set"
            fix = "Unset HF_HUB_OFFLINE to download it."
        else:
            reason = f"cannot reach the Hub at {endpoint}: {first_line(error)}"
            fix = ("Check the network (and HF_ENDPOINT), raise HF_HUB_ETAG_TIMEOUT on a slow link, "
                   "or download it once where the Hub is reachable.")
        return HubUnreachableError(
            f"Cannot download {where}: {reason}, and it is not in the cache ({constants.HF_HUB_CACHE}). "
            f"{fix} {local}")
    if isinstance(error, EntryNotFoundError):
        return WeightsNotFoundError(
            f"Cannot download {where}: {repo_id} has no file {filename!r} on {endpoint}. Check the file "
            f"name (hf_hub_filename in the model's pretrained_cfg), or publish it with "
            f"`python -m snnzoo.publish`. {local}")
    if status in (401, 403):
        return WeightsNotFoundError(
            f"Cannot download {where}: the Hub at {endpoint} refused access (HTTP {status}). Check HF_TOKEN "
            f"and its permissions. {local}")
    return HubUnreachableError(
        f"Cannot download {where}: the Hub at {endpoint} answered HTTP {status} ({first_line(error)}) "
        f"and the file is not in the cache ({constants.HF_HUB_CACHE}). Try again later. {local}")


def _describe(repo_id: str, filename: str, revision: str | None) -> str:
    at = f" at revision {revision}" if revision else ""
    return f"{filename} from {repo_id}{at}"


def _announced_sha256(path: Path) -> str | None:
    """The sha256 the Hub announced for a cached LFS file: the name of its blob in the cache."""
    blob = path.resolve()
    if blob.parent.name == "blobs" and SHA256_PATTERN.fullmatch(blob.name):
        return blob.name
    return None


def _check_sha256(path: Path, expected: str, source: str | None,
                  recorded_in: Path | None = None) -> None:
    actual = file_sha256(path)
    if actual == expected.lower():
        return
    origin = f" (from {source})" if source else ""
    where = f" (recorded in {recorded_in})" if recorded_in else ""
    raise WeightsIntegrityError(
        f"{path}{origin} has sha256 {actual}, expected {expected}{where}: the file is corrupted, "
        f"truncated, or not the one its folder was saved with. {_fix_for_damaged(path, source)} "
        f"If the file was changed on purpose, update the recorded sha256.")


def _fix_for_damaged(path: Path, source: str | None) -> str:
    if source:  # downloaded
        return (f"Delete {path.resolve()} and download it again (download_weights(..., "
                f"force_download=True)).")
    return "Write it again (snnzoo.hub.save_pretrained) or restore it from the copy it came from."


# Saving


def _check_savable(model, directory: Path) -> None:
    """Refuse a model whose weights or config would not rebuild it: fused, unnamed, diverged."""
    fused = [name for name, module in model.named_modules() if getattr(module, "inference_only", False)]
    if fused:
        raise ValueError(f"{type(model).__name__} is fused for inference ({fused[0]} and {len(fused) - 1} more "
                         "layers have BatchNorms folded into them), so its weights no longer fit its "
                         "architecture; save the model before fusing it")
    pretrained_cfg = getattr(model, "pretrained_cfg", None)
    if not pretrained_cfg or not pretrained_cfg.get("architecture"):
        raise ValueError(f"{type(model).__name__} has no pretrained_cfg naming its architecture; build it "
                         "with timm.create_model(...) so that config.json can say how to rebuild it.")
    problem = non_finite_problem(model.state_dict(), f"{type(model).__name__} (to save in {directory})")
    if problem:
        raise ValueError(f"{problem}; nothing was written")


def _write_weights_and_config(model, staging: Path) -> dict:
    """model.safetensors and config.json (recording the weights' sha256) in staging; the config."""
    state_dict = {key: tensor.detach().to("cpu").contiguous() for key, tensor in model.state_dict().items()}
    safetensors.torch.save_file(state_dict, staging / WEIGHTS_FILENAME, metadata={"format": "pt"})
    give_new_file_mode(staging / WEIGHTS_FILENAME)
    config = model_config(model, file_sha256(staging / WEIGHTS_FILENAME))
    (staging / CONFIG_FILENAME).write_text(config_text(config))
    return config


def _kept_card(directory: Path, staging: Path, config: dict, replace_folder: bool) -> str:
    """The folder's card where it describes these weights (its pictures copied to staging when
    the folder is replaced), else the default card."""
    if not _describes(directory, config["pretrained_cfg"][WEIGHTS_SHA256_KEY]):
        return _default_card(config)
    card = (directory / CARD_FILENAME).read_text(encoding="utf-8")
    if replace_folder:
        for name in _card_links(card):
            if (directory / name).is_file() and not (staging / name).exists():
                (staging / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(directory / name, staging / name)
    return card


def _move_files_into(staging: Path, directory: Path) -> None:
    """Replace the folder's files by staging's, each atomically; its other files stay."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        os.replace(path, directory / path.name)
    staging.rmdir()


def _check_extra_file_name(name: str) -> None:
    if name in (WEIGHTS_FILENAME, CONFIG_FILENAME, CARD_FILENAME):
        raise ValueError(f"extra_files cannot replace {name}: save_pretrained writes it "
                         "(pass model_card=... for the card)")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"extra_files names must be plain, visible file names, not {name!r}")
    if name.endswith(PICKLE_SUFFIXES):
        raise ValueError(f"extra_files cannot hold {name!r}: pickle-based files are never published")


def _default_card(config: dict) -> str:
    architecture = config["architecture"]
    license_name = config.get("pretrained_cfg", {}).get("license")
    if not license_name:
        raise ValueError(f"Cannot write a model card for {architecture}: its pretrained_cfg has no "
                         "'license'. Set it in the model's default_cfgs, or pass model_card=... with a "
                         "license in its front matter.")
    return (front_matter(license_name, pipeline_tag="image-classification")
            + f"\n# {architecture}\n\n"
            f"Spiking neural network weights for `{architecture}`, published with snnzoo.\n\n"
            + "\n".join(create_model_snippet(architecture, pretrained=True)) + "\n\n"
            f"`model.safetensors` sha256: `{config['pretrained_cfg'][WEIGHTS_SHA256_KEY]}`\n")


def _describes(directory: Path, sha256: str) -> bool:
    """Whether the folder's card (and the claims and pictures it holds) is about the weights
    with this sha256: the folder records that digest for its own weights. A card about other
    weights is never kept with new ones."""
    if not (directory / CARD_FILENAME).is_file():
        return False
    return recorded_sha256(directory / WEIGHTS_FILENAME) == sha256


def has_default_card(directory: Path) -> bool:
    """Whether the model folder's card is the one save_pretrained generates for its config
    (nothing was claimed in it)."""
    try:
        config = json.loads((directory / CONFIG_FILENAME).read_text(encoding="utf-8"))
        return (directory / CARD_FILENAME).read_text(encoding="utf-8") == _default_card(config)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _check_replaceable(directory: Path) -> None:
    """save_pretrained replaces a model folder as a whole: refuse anything else that is there."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file, not a model folder: choose another directory "
                         f"to save into, or move the file away")
    if directory.is_dir() and not (directory / CONFIG_FILENAME).is_file():
        others = sorted(path.name for path in directory.iterdir())
        if others:
            raise ValueError(
                f"{directory} holds {abbreviated_list(others)}, but no {CONFIG_FILENAME}: it is not a model "
                f"folder, and saving would replace all of it. Save into a new or empty directory")


def _card_links(card: str) -> list[str]:
    """The files of its folder a markdown card links to or shows, ![x](cell.png) or
    [y](<log file.csv>): relative, URL-decoded targets outside code, without a scheme."""
    text = re.sub(r"(?ms)^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", "", card)  # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    names = set()
    for target in re.findall(r"\]\(\s*(<[^>\n]+>|[^)\s]+)", text):
        target = unquote(target.strip("<>").split("#")[0].split("?")[0])
        if (target and not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target)
                and not target.startswith("/") and ".." not in Path(target).parts):
            names.add(target)
    return sorted(names)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import ctypes.util
    import sys
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without it
        return False
    raise OSError(error, os.strerror(error), str(second))


def move_into_place(staging: Path, directory: Path) -> None:
    """Rename `staging` to `directory`. An existing `directory` is swapped with it in one step
    where the system can (the old folder then lies at `staging` and is removed); elsewhere it is
    set aside first and removed last."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    if _exchange(staging, directory):
        shutil.rmtree(staging, ignore_errors=True)
        return
    previous = directory.parent / f".{directory.name}.previous-{uuid.uuid4().hex[:12]}"
    os.replace(directory, previous)
    try:
        os.replace(staging, directory)
    except BaseException:
        os.replace(previous, directory)
        raise
    shutil.rmtree(previous, ignore_errors=True)


# Validation


def _read_config(directory: Path, problems: list[str]) -> dict | None:
    path = directory / CONFIG_FILENAME
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        problems.append(f"config.json is not valid JSON: {error}")
        return None
    if not isinstance(config, dict):
        problems.append(f"config.json must hold an object, not {type(config).__name__}")
        return None
    if not isinstance(config.get("architecture"), str) or not config["architecture"]:
        problems.append("config.json has no 'architecture' naming the timm model to build")
    if not isinstance(config.get("model_args", {}), dict):
        problems.append("config.json's 'model_args' must be an object of keyword arguments")
    if not isinstance(config.setdefault("pretrained_cfg", {}), dict):
        problems.append("config.json's 'pretrained_cfg' must be an object")
        config["pretrained_cfg"] = {}
    return config


def _file_problems(directory: Path) -> list[str]:
    """The three files that must be there, and the pickle-based ones that must not."""
    problems = [f"{name} is missing" for name in (WEIGHTS_FILENAME, CONFIG_FILENAME, CARD_FILENAME)
                if not (directory / name).is_file()]
    return problems + [f"{path.relative_to(directory)} is a pickle-based file: only safetensors weights "
                       "are published; delete it"
                       for path in model_folder_files(directory) if path.name.endswith(PICKLE_SUFFIXES)]


def _license_problems(card: dict | None, config: dict | None) -> list[str]:
    if config is None or card is None:
        return []
    card_license, config_license = card.get("license"), config["pretrained_cfg"].get("license")
    if card_license and config_license and str(card_license).lower() != str(config_license).lower():
        return [f"{CARD_FILENAME} says license {card_license!r} but config.json's pretrained_cfg "
                f"says {config_license!r}: make them agree"]
    return []


def _digest_problems(recorded: str | None, actual: str) -> list[str]:
    if recorded is None:
        return [f"config.json's pretrained_cfg records no {WEIGHTS_SHA256_KEY!r}: save the folder "
                "with snnzoo.hub.save_pretrained, or add the sha256 of model.safetensors"]
    if str(recorded).lower() != actual:
        return [f"model.safetensors has sha256 {actual} but config.json records {recorded}: the "
                "weights changed after the config was written; save the folder again with "
                "save_pretrained"]
    return []


def _weights_problems(weights: Path, config: dict) -> list[str]:
    """Whether the weights (their digest checked already) load and fit config's architecture."""
    try:
        state_dict = _read_safetensors(weights, None)
    except WeightsIntegrityError as error:
        return [str(error)]
    if not isinstance(config.get("architecture"), str):
        return []
    problem = non_finite_problem(state_dict, WEIGHTS_FILENAME)
    return _architecture_problems(config, state_dict) + ([problem] if problem else [])


def _read_card_metadata(directory: Path, problems: list[str], actual: str | None,
                        recorded: str | None) -> dict | None:
    """The card's front matter; its problems appended to `problems`. A digest the card names
    that config.json records too is config.json's problem, reported once, there."""
    path = directory / CARD_FILENAME
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        problems.append(f"{CARD_FILENAME} is not UTF-8 text ({error}): save it as UTF-8")
        return None
    problems += [f"{CARD_FILENAME} links to {name}, which the folder does not hold: add it, or "
                 f"regenerate the card" for name in _card_links(text)
                 if not (directory / name).exists()]
    named = set(SHA256_PATTERN.findall(text))
    if named and actual is not None and actual not in named and str(recorded).lower() not in named:
        problems.append(f"{CARD_FILENAME} names sha256 {abbreviated_list(sorted(named))}, but "
                        f"{WEIGHTS_FILENAME} has sha256 {actual}: the card describes other "
                        f"weights; regenerate it for these (make cards, or pass model_card= "
                        f"to save_pretrained)")
    metadata_text, _ = split_front_matter(text)
    if metadata_text is None:
        problems.append(f"{CARD_FILENAME} has no YAML front matter (a block between '---' lines at the top)")
        return None
    try:
        metadata = yaml.safe_load(metadata_text)
    except yaml.YAMLError as error:
        problems.append(f"{CARD_FILENAME} front matter is not valid YAML: {error}")
        return None
    if not isinstance(metadata, dict):
        problems.append(f"{CARD_FILENAME} front matter must be a mapping of key: value lines")
        return None
    problems += [f"{CARD_FILENAME} front matter has no {key!r}" for key in ("library_name", "license")
                 if not metadata.get(key)]
    return metadata


def _architecture_problems(config: dict, state_dict: dict) -> list[str]:
    architecture = config["architecture"]
    model_args = dict(config.get("model_args") or {})
    if "num_classes" in config:
        model_args.setdefault("num_classes", config["num_classes"])
    try:
        model = timm.create_model(architecture, pretrained=False, **model_args)
    except Exception as error:  # unknown architecture or arguments it does not take
        return [f"timm.create_model({architecture!r}, **{model_args}) failed ({type(error).__name__}: "
                f"{first_line(error)}): the architecture must be registered (import its package) and take "
                f"config.json's model_args as JSON gives them (lists, not tuples)"]
    return [f"model.safetensors does not fit {architecture} built with {model_args}: {problem}"
            for problem in state_dict_problems(state_dict, model.state_dict())]


def state_dict_problems(state_dict: dict, expected: dict) -> list[str]:
    """What keeps state_dict from loading into a model whose state dict is `expected`, one
    sentence a kind (keys missing, keys unexpected, shapes, kinds of dtype that loading would
    convert silently): the one check of weights against a model, for loading and publishing."""
    problems = []
    missing = sorted(expected.keys() - state_dict.keys())
    unexpected = sorted(state_dict.keys() - expected.keys())
    if missing:
        problems.append(f"{len(missing)} key(s) missing: {abbreviated_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {abbreviated_list(unexpected)}")
    shapes = [f"{key} {tuple(state_dict[key].shape)} vs {tuple(expected[key].shape)}"
              for key in sorted(expected.keys() & state_dict.keys())
              if state_dict[key].shape != expected[key].shape]
    if shapes:
        problems.append(f"{len(shapes)} shape(s) differ (file vs model): {abbreviated_list(shapes)}")
    return problems + dtype_mismatches(state_dict, expected)


def dtype_mismatches(state_dict: dict, expected: dict) -> list[str]:
    """The problem (a list of one, or empty) of tensors in both whose kinds of dtype (floating,
    integer, bool, complex) differ: load_state_dict would convert them silently."""
    dtypes = [f"{key} {state_dict[key].dtype} vs {expected[key].dtype}"
              for key in sorted(expected.keys() & state_dict.keys())
              if _dtype_kind(state_dict[key].dtype) != _dtype_kind(expected[key].dtype)]
    if not dtypes:
        return []
    return [f"{len(dtypes)} tensor(s) of another kind of dtype (file vs model), which loading "
            f"would convert: {abbreviated_list(dtypes)}"]


def _dtype_kind(dtype: torch.dtype) -> str:
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "floating"
    return "bool" if dtype == torch.bool else "integer"


def non_finite_tensors(state_dict: dict) -> list[str]:
    """The names of the floating-point tensors of state_dict that hold NaN or infinity."""
    return sorted(key for key, value in state_dict.items()
                  if value.is_floating_point() and not bool(torch.isfinite(value).all()))


def non_finite_problem(state_dict: dict, what: str) -> str | None:
    """None, or the sentence refusing weights with NaN or infinite values (what: their owner)."""
    names = non_finite_tensors(state_dict)
    if not names:
        return None
    return (f"{what} holds NaN or infinite values in {len(names)} tensor(s) ({abbreviated_list(names)}): "
            f"the training run it comes from diverged; use weights saved before that, or train "
            f"again with a smaller --lr")
