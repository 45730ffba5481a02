"""python -m snnzoo.train and python -m snnzoo.validate on the embedded sample, small models."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from snnzoo import hub
from snnzoo import train as train_module
from snnzoo.validate import main as validate_main

FAST = ["snasnet_fmnist", "--width", "4", "--batch-size", "16", "--max-steps", "3",
        "--eval-batch-size", "400", "--checkpoint-minutes", "1000"]


def _train(out, *extra):
    return train_module.main([*FAST, "--out", str(out), *extra])


def test_training_writes_the_model_folder(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--epochs", "2", "--val-split", "0.1") == 0
    for name in ("log.csv", "curves.png", "checkpoint.pt", "model.safetensors", "config.json",
                 "README.md", "results.json", "best/model.safetensors", "best/config.json"):
        assert (out / name).is_file(), name
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 3
    results = json.loads((out / "results.json").read_text())
    assert results["split"] == "test" and results["images"] == 400 and results["epochs"] == 2
    assert results["command"].startswith("python -m snnzoo.train snasnet_fmnist --width 4")
    assert 0 <= results["top1"] <= 100 and results["firing_rates"]
    card = (out / "README.md").read_text()
    assert f"top-1 {results['top1']:.2f}%" in card and "validation hold-out" in card
    assert hub.validate_model_folder(out / "best") == []


def test_interrupted_training_resumes_exactly(tmp_path, monkeypatch):
    _train(tmp_path / "whole", "--epochs", "2")
    whole = hub.load_state_dict(tmp_path / "whole" / "model.safetensors")

    class StopAfterFourSteps:
        checks = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        @property
        def requested(self):
            StopAfterFourSteps.checks += 1
            return StopAfterFourSteps.checks >= 5  # from epoch 2, after its second step

    monkeypatch.setattr(train_module, "_StopRequest", StopAfterFourSteps)
    with pytest.raises(SystemExit) as stopped:
        _train(tmp_path / "parts", "--epochs", "2")
    assert stopped.value.code == 130
    saved = torch.load(tmp_path / "parts" / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == (1, 2)
    with pytest.raises(SystemExit, match="pass --resume"):
        _train(tmp_path / "parts", "--epochs", "2")
    monkeypatch.undo()
    _train(tmp_path / "parts", "--epochs", "2", "--resume")
    resumed = hub.load_state_dict(tmp_path / "parts" / "model.safetensors")
    for key in whole:
        assert torch.equal(resumed[key], whole[key]), f"{key} differs after resuming"
    assert (tmp_path / "parts" / "log.csv").read_text().count("\n") == 3


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        _train(tmp_path / "none", "--resume")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--torchcompile", "--timesteps", "2"]],
                         ids=["eager", "compiled"])
def test_torchrun_two_cpu_processes(tmp_path, extra):
    # Compiled: torch.compile wraps the DDP module (dynamo splits its graph at the gradient
    # buckets); the folder and checkpoint keep the model's own names.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
         "127.0.0.1", "--master-port", port, "-m", "snnzoo.train", *FAST, "--epochs", "1",
         *extra, "--out", str(tmp_path / "ddp")], capture_output=True, text=True, timeout=420,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    published = tmp_path / "published"  # the folder as pushed, without the run's checkpoint
    published.mkdir()
    for name in ("model.safetensors", "config.json", "README.md"):
        shutil.copy(tmp_path / "ddp" / name, published / name)
    assert hub.validate_model_folder(published) == []  # loads strictly into a new model
    assert (tmp_path / "ddp" / "log.csv").read_text().count("\n") == 2
    checkpoint = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)
    assert not any(key.startswith(("module.", "_orig_mod.")) for key in checkpoint["model"])


def test_validate_reports_accuracy_and_firing(tmp_path, capsys):
    _train(tmp_path / "run", "--epochs", "1")
    assert validate_main(["snasnet_fmnist", "--checkpoint", str(tmp_path / "run"), "--json",
                          str(tmp_path / "v.json")]) == 0
    measured = json.loads((tmp_path / "v.json").read_text())
    trained = json.loads((tmp_path / "run" / "results.json").read_text())
    assert measured["images"] == 400 and measured["top1"] == pytest.approx(trained["top1"])
    assert measured["firing_rates"] == pytest.approx(trained["firing_rates"], abs=1e-5)
    printed = capsys.readouterr().out
    assert f"top-1 {measured['top1']:.2f}%" in printed and "pre_lif" in printed
    assert validate_main(["snasnet_fmnist", "--checkpoint", str(tmp_path / "run"), "--json",
                          str(tmp_path / "nhwc.json"), "--channels-last"]) == 0
    nhwc = json.loads((tmp_path / "nhwc.json").read_text())
    assert abs(nhwc["top1"] - measured["top1"]) <= 100 / 400, "NHWC classifies as NCHW does"
    assert validate_main(["snasnet_fmnist", "--checkpoint", str(tmp_path / "run"), "--json",
                          str(tmp_path / "fused.json"), "--reparam"]) == 0
    fused = json.loads((tmp_path / "fused.json").read_text())
    assert abs(fused["top1"] - measured["top1"]) <= 100 / 400, "fused classifies as unfused"
    assert fused["firing_rates"].keys() == measured["firing_rates"].keys()
    assert fused["reparam"] and not measured["reparam"] and nhwc["channels_last"]


def test_training_epochs_fit_the_budget(monkeypatch, capsys):
    """scripts/training_epochs.py with step and evaluation times fixed at 0.1 s and 0.2 s:
    an epoch of 10 steps and 5 evaluation batches takes 2.0 s, the final evaluation
    2 x 2 x 0.2 + 5 = 5.8 s, so 26 s hold floor((26 - 5.8) / 2.0) = 10 epochs, and a budget too
    small for one still trains one."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "scripts" / "training_epochs.py"
    spec = importlib.util.spec_from_file_location("training_epochs", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    times = iter([0.1, 0.2] * 2)
    monkeypatch.setattr(script, "seconds_per_call", lambda *args, **kwargs: next(times))
    common = ["snasnet_fmnist", "--batch-size", "10", "--train-images", "100",
              "--eval-batch-size", "10", "--eval-images", "50", "--final-images", "20",
              "--margin", "1", "--overhead", "0", "--device", "cpu"]
    for budget, epochs in (("26", 10), ("3", 1)):
        assert script.main([*common, "--budget", budget]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(epochs)


def test_training_in_channels_last_writes_loadable_weights(tmp_path):
    # The model computes in NHWC and its conv weights are channels_last tensors: the folder
    # must still hold plain contiguous safetensors that load strictly into a new model.
    out = tmp_path / "run"
    assert _train(out, "--epochs", "1", "--val-split", "0.1", "--channels-last") == 0
    assert hub.validate_model_folder(out / "best") == []  # loads strictly, sha256 recorded
    weights = hub.load_state_dict(out / "model.safetensors")
    assert all(tensor.is_contiguous() for tensor in weights.values())


def test_compiled_training_writes_loadable_weights(tmp_path, monkeypatch):
    # The training step runs compiled (inductor); checkpoints and the model folder keep the
    # model's own parameter names, and a resumed run compiles again.
    compiled, compile = [], torch.compile

    def recording_compile(target, *args, **kwargs):
        if isinstance(target, torch.nn.Module):
            compiled.append(target)
        return compile(target, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    out = tmp_path / "run"
    assert _train(out, "--epochs", "1", "--torchcompile", "--timesteps", "2",
                  "--val-split", "0.1") == 0
    assert hub.validate_model_folder(out / "best") == []  # loads strictly into a new model
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert not any(key.startswith("_orig_mod") for key in checkpoint["model"])
    assert _train(out, "--epochs", "2", "--torchcompile", "--timesteps", "2", "--val-split",
                  "0.1", "--resume") == 0
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and all(math.isfinite(float(row.split(",")[2])) for row in rows[1:])
    assert len(compiled) == 2 and all(hasattr(module, "stem") for module in compiled)
