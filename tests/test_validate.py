"""python -m snnzoo.validate given what it cannot measure: each refusal names the file or value."""

import json
import re

import pytest
import torch

import snnzoo
from snnzoo import hub
from snnzoo import train as train_module
from snnzoo import validate as validate_module
from snnzoo.data import evaluation_batches, load_dataset, dataset_info
from snnzoo.evaluate import evaluate
from snnzoo.validate import main as validate_main
from test_hub import hub_env  # noqa: F401  (fixture)

FAST = ["snasnet_fmnist", "--width", "4", "--batch-size", "16", "--max-steps", "3",
        "--eval-batch-size", "400", "--checkpoint-minutes", "1000", "--epochs", "1"]


class _StopAtFirstCheck:
    requested = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run (`run`) and one stopped after its first step (`partial`), width 4."""
    root = tmp_path_factory.mktemp("runs")
    assert train_module.main([*FAST, "--out", str(root / "run")]) == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "_StopRequest", _StopAtFirstCheck)
        with pytest.raises(SystemExit):
            train_module.main([*FAST, "--out", str(root / "partial")])
    return root


def test_a_checkpoint_is_measured_with_the_model_it_was_trained_as(runs, tmp_path):
    assert validate_main(["snasnet_fmnist", "--checkpoint", str(runs / "partial" / "checkpoint.pt"),
                          "--json", str(tmp_path / "v.json")]) == 0
    measured = json.loads((tmp_path / "v.json").read_text())
    model = snnzoo.create_model("snasnet_fmnist", width=4)
    model.load_state_dict(torch.load(runs / "partial" / "checkpoint.pt", weights_only=True)["model"])
    info = dataset_info("fashion-mnist-sample")
    expected = evaluate(model, evaluation_batches(load_dataset("fashion-mnist-sample", "test"),
                                                  info, 400, torch.device("cpu")),
                        torch.device("cpu"), "fp32")
    assert measured["top1"] == pytest.approx(expected["top1"])
    energy = measured["energy"]  # per image, per layer (tests/test_energy.py checks the counts)
    assert energy["images"] == measured["images"] and energy["ann_macs"] > 0
    assert energy["synops"] == pytest.approx(sum(layer["synops"]
                                                 for layer in energy["layers"].values()))
    assert [path.name for path in tmp_path.iterdir()] == ["v.json"], "a temporary file was left"


def test_a_folder_without_weights_points_to_its_checkpoint(runs):
    with pytest.raises(SystemExit, match=f"--checkpoint {runs / 'partial' / 'checkpoint.pt'}"):
        validate_main(["snasnet_fmnist", "--checkpoint", str(runs / "partial")])


def test_another_architecture_than_the_recorded_one_is_refused(runs):
    with pytest.raises(SystemExit, match=r"records the architecture snasnet_fmnist, not "
                                         r"snasnet_cifar10.*validate snasnet_fmnist"):
        validate_main(["snasnet_cifar10", "--checkpoint", str(runs / "run")])


@pytest.mark.parametrize("prefix", ["hf-hub:", "hf_hub:"])
def test_hub_names_are_not_held_to_the_recorded_architecture(runs, hub_env, prefix):  # noqa: F811
    from test_hub import closed_port_url
    hub_env(closed_port_url())  # the name's config.json is what validate would build from
    # an unreachable Hub is one error line (the checkpoint's recorded architecture was not held
    # against the hf-hub name: validate went on to fetch its config)
    with pytest.raises(SystemExit, match="^error: Cannot download config.json from someone/fmnist"):
        validate_main([f"{prefix}someone/fmnist", "--checkpoint", str(runs / "run")])


@pytest.mark.parametrize("dataset, expected", [
    ("cifar10", r"^error: CIFAR-10: not found\. Searched:\n.*--download"),
    ("no-such-data", r"^error: unknown data set 'no-such-data'; choose one of"),
])
def test_missing_or_unknown_data_ends_with_one_error(tmp_path, dataset, expected):
    """One `error:` message listing the ways to get the data, not a traceback."""
    with pytest.raises(SystemExit) as refused:
        validate_main(["snasnet_cifar10", "--untrained", "--dataset", dataset, "--data-dir",
                       str(tmp_path)])
    assert re.match(expected, str(refused.value.code), re.DOTALL), refused.value.code


def test_weights_must_be_named(capsys):
    # Without --pretrained, --checkpoint or --untrained it would measure random weights.
    with pytest.raises(SystemExit) as refused:
        validate_main(["snasnet_fmnist"])
    assert refused.value.code == 2
    assert "one of the arguments --pretrained --checkpoint --untrained is required" in \
        capsys.readouterr().err


def test_the_data_set_is_checked_against_the_built_model(tmp_path):
    # 32x32 inputs, though snasnet_fmnist's registered pretrained_cfg says 28x28.
    hub.save_pretrained(snnzoo.create_model("snasnet_fmnist", width=4, img_size=32), tmp_path / "m")
    with pytest.raises(SystemExit, match=r"takes \(1, 32, 32\) images.*has \(1, 28, 28\)"):
        validate_main(["snasnet_fmnist", "--checkpoint", str(tmp_path / "m")])


@pytest.mark.parametrize("content", [b"not a checkpoint", "truncated", {"model": 1}, {"epoch": 3}],
                         ids=["garbage", "truncated", "model-not-a-state-dict", "no-model"])
def test_unreadable_weights_are_named(runs, tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content == "truncated":
        data = (runs / "partial" / "checkpoint.pt").read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(SystemExit, match=f"error: {path} "):
        validate_main(["snasnet_fmnist", "--checkpoint", str(path)])


def test_weights_that_do_not_fit_are_named(tmp_path):
    hub.save_pretrained(snnzoo.create_model("snasnet_fmnist", width=4), tmp_path / "m")
    (tmp_path / "m" / "config.json").unlink()  # nothing recorded: the default width 256 is built
    with pytest.raises(SystemExit, match=r"weights in .*m do not fit snasnet_fmnist"):
        validate_main(["snasnet_fmnist", "--checkpoint", str(tmp_path / "m")])


def test_a_json_path_in_a_missing_folder_is_refused_first(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(validate_module, "evaluate", lambda *args, **kwargs: pytest.fail("evaluated"))
    with pytest.raises(SystemExit) as refused:
        validate_main(["snasnet_fmnist", "--checkpoint", str(runs / "run"), "--json",
                       str(tmp_path / "missing" / "v.json")])
    assert refused.value.code == 2
    assert f"the folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err


def _flip_exponent_bit(path, key):
    """Flip one exponent bit of the first float32 of tensor `key` in a safetensors file."""
    raw = bytearray(path.read_bytes())
    header_size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_size])
    offset = 8 + header_size + header[key]["data_offsets"][0]
    raw[offset + 3] ^= 0x01  # the lowest exponent bit of a little-endian float32
    path.write_bytes(bytes(raw))


def test_a_model_folder_whose_recorded_digest_does_not_match_is_refused(tmp_path, capsys):
    # It was measured as if nothing had happened: one exponent bit of stem.0.weight flipped in
    # a copy of model_cards/snasnet_fmnist gave 93.75% instead of 94.25%, without a word.
    import shutil
    from pathlib import Path
    folder = tmp_path / "snasnet_fmnist"
    shutil.copytree(Path(__file__).resolve().parents[1] / "model_cards" / "snasnet_fmnist", folder)
    recorded = json.loads((folder / "config.json").read_text())["pretrained_cfg"]["hf_hub_sha256"]
    _flip_exponent_bit(folder / hub.WEIGHTS_FILENAME, "stem.0.weight")
    actual = hub.file_sha256(folder / hub.WEIGHTS_FILENAME)
    with pytest.raises(SystemExit) as refused:
        validate_main(["snasnet_fmnist", "--checkpoint", str(folder)])
    message = str(refused.value.code)
    assert message.startswith("error: ") and recorded in message and actual in message
    assert str(folder / "config.json") in message
    for load in (lambda: hub.load_state_dict(folder / hub.WEIGHTS_FILENAME),
                 lambda: snnzoo.create_model("snasnet_fmnist", pretrained=True,
                                             pretrained_cfg_overlay=dict(
                                                 file=str(folder / hub.WEIGHTS_FILENAME)))):
        with pytest.raises(hub.WeightsIntegrityError, match=f"has sha256 {actual}, expected {recorded}"):
            load()
