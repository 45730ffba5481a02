"""Every command-line failure caused by the input or the environment is one ``error:`` line
with a non-zero exit status; a traceback only for bugs (or with --debug). One row per failing
input: the tool, its arguments, and a fragment of the message it must print."""

import pytest
import torch
from PIL import Image

from snnzoo.convert import main as convert_main
from snnzoo.publish import main as publish_main
from snnzoo.search.__main__ import main as search_main
from snnzoo.train import main as train_main
from snnzoo.validate import main as validate_main

TOOLS = {"search": search_main, "train": train_main, "validate": validate_main,
         "convert": convert_main, "publish": publish_main}
TRAIN = ["--width", "4", "--batch-size", "4", "--max-steps", "1", "--epochs", "1",
         "--eval-batch-size", "8"]
SEARCH = ["--num-search", "2", "--width", "0.125", "--batch-size", "4", "--repeat", "1",
          "--timesteps", "2"]


@pytest.fixture
def files(tmp_path, monkeypatch):
    """Bad files of each kind, as {name: path}; the variants directory is the test's own."""
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    (tmp_path / "a_file").write_text("not a folder\n")
    (tmp_path / "text.txt").write_text("hello\n")
    broken = tmp_path / "run_with_text_checkpoint"
    broken.mkdir()
    (broken / "checkpoint.pt").write_text("hello\n")
    images = tmp_path / "corrupt_images"
    for split in ("train", "test"):
        for label in ("a", "b"):
            folder = images / split / label
            folder.mkdir(parents=True)
            for index in range(4):
                Image.new("RGB", (16, 16), (40 * index, 90, 200)).save(folder / f"{index}.png")
    (images / "train" / "a" / "0.png").write_bytes(b"\x89PNG truncated")
    return {"tmp": tmp_path, "under_a_file": tmp_path / "a_file" / "out", "text": tmp_path / "text.txt",
            "broken_run": broken, "corrupt_images": images}


CASES = [
    ("train", ["snasnet_nope", *TRAIN, "--out", "{tmp}/r"], "unknown model 'snasnet_nope'"),
    ("train", ["snasnet_fmnist", "--genotype", "abc", *TRAIN, "--out", "{tmp}/r"], "genotype 'abc'"),
    ("train", ["snasnet_fmnist", "--device", "foo", *TRAIN], "'foo' is not a device"),
    ("train", ["snasnet_fmnist", "--device", "mps", *TRAIN], "mps cannot be used here"),
    ("train", ["snasnet_fmnist", *TRAIN, "--out", "{under_a_file}"], "Not a directory"),
    ("train", ["snasnet_fmnist", "--seed", "99999999999999999999", *TRAIN], "is too large"),
    ("train", ["snasnet_fmnist", "--torchcompile", "foo", *TRAIN], "is not a torch.compile backend"),
    ("train", ["snasnet_fmnist", *TRAIN, "--out", "{broken_run}", "--resume"],
     "is corrupted or truncated"),
    ("train", ["snasnet_fmnist", "--dataset", "{corrupt_images}", *TRAIN, "--out", "{tmp}/r"],
     "cannot identify image file"),
    ("validate", ["resnet50", "--untrained"], "unknown model 'resnet50'"),
    ("validate", ["snasnet_cifar10", "--pretrained", "--dataset", "fashion-mnist-sample"],
     "no pretrained weights are published for snasnet_cifar10"),
    ("validate", ["snasnet_fmnist", "--checkpoint", "{text}"], "is corrupted or truncated"),
    ("validate", ["snasnet_fmnist", "--untrained", "--json", "/proc/x.json"], "cannot write in /proc"),
    ("validate", ["snasnet_fmnist", "--untrained", "--device", "foo"], "'foo' is not a device"),
    ("search", [*SEARCH, "--out", "{under_a_file}"], "Not a directory"),
    ("search", [*SEARCH, "--dataset", "{corrupt_images}", "--out", "{tmp}/s"],
     "cannot identify image file"),
    ("search", [*SEARCH, "--device", "cuda:7"], "cuda:7"),
    ("convert", ["{text}", "--model", "snasnet_fmnist", "--out", "{tmp}/c"], "{text}"),
    ("publish", ["{tmp}/missing", "--repo-id", "org/repo", "--dry-run"], "Refusing to publish"),
]


@pytest.mark.parametrize("tool, argv, expected", CASES,
                         ids=[f"{tool}-{i}" for i, (tool, _, _) in enumerate(CASES)])
def test_a_failure_is_one_error_line(files, capsys, tool, argv, expected):
    argv = [arg.format(**files) for arg in argv]
    expected = expected.format(**files)
    try:
        code = TOOLS[tool](argv)
    except SystemExit as stopped:
        code = stopped.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # SystemExit("error: ...") prints its message, exit status 1
        err, code = err + code, 1
    assert code not in (0, None), f"{tool} {argv} exited 0"
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, f"{tool} {argv}: expected one error line, got:\n{err}"
    assert expected in lines[0], f"{tool} {argv}: {lines[0]!r} lacks {expected!r}"
    assert "Traceback" not in err


def test_debug_shows_the_traceback(files):
    with pytest.raises(ValueError, match="unknown model"):
        train_main(["snasnet_nope", *TRAIN, "--out", str(files["tmp"] / "r"), "--debug"])


def test_no_cuda_device_is_one_error_line_where_none_is_visible(files, capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    with pytest.raises(SystemExit) as stopped:
        train_main(["snasnet_fmnist", "--device", "cuda", *TRAIN])
    assert stopped.value.code == 2
    assert "no CUDA GPU is visible here" in capsys.readouterr().err
