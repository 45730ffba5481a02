"""python -m snnzoo.train and python -m snnzoo.validate on the embedded sample, small models."""

import csv
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import types
import warnings

import pytest
import torch

import snnzoo
from snnzoo import hub
from snnzoo import train as train_module
from snnzoo.validate import main as validate_main

FAST = ["snasnet_fmnist", "--width", "4", "--batch-size", "16", "--max-steps", "3",
        "--eval-batch-size", "400", "--checkpoint-minutes", "1000"]


def _train(out, *extra):
    return train_module.main([*FAST, "--out", str(out), *extra])


class _StopAfter:
    """Stands in for train's _StopRequest: requests the stop at its n-th check (one per step)."""

    def __init__(self, checks, on_stop=lambda: None):
        self.checks, self.on_stop, self.count = checks, on_stop, 0

    def __call__(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def requested(self):
        self.count += 1
        if self.count == self.checks:
            self.on_stop()
        return self.count >= self.checks


def _train_until_stopped(monkeypatch, out, checks, *extra, on_stop=lambda: None):
    """Train with FAST and `extra`, stopped after `checks` steps (3 per epoch) as by Ctrl-C."""
    monkeypatch.setattr(train_module, "_StopRequest", _StopAfter(checks, on_stop))
    with pytest.raises(SystemExit) as stopped:
        _train(out, *extra)
    assert stopped.value.code == 130
    monkeypatch.setattr(train_module, "_StopRequest", _StopRequestOriginal)


_StopRequestOriginal = train_module._StopRequest


def _log(out):
    with open(out / "log.csv") as handle:
        return list(csv.DictReader(handle))


def test_training_writes_the_model_folder(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--epochs", "2", "--val-split", "0.1") == 0
    for name in ("log.csv", "curves.png", ".training_run.json", "model.safetensors", "config.json",
                 "README.md", "results.json", "best/model.safetensors", "best/config.json"):
        assert (out / name).is_file(), name
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 3
    # The finished run folder is the model-card layout: the checkpoint gave way to the hidden
    # record, which publishing skips.
    assert not (out / "checkpoint.pt").exists()
    assert hub.validate_model_folder(out) == []
    # best/'s card counts the epoch its weights come from (the first with the highest val top-1).
    val = [float(row["val_top1"]) for row in _log(out)]
    best_epoch = val.index(max(val)) + 1
    best_card = (out / "best" / "README.md").read_text()
    assert f"epochs run: {best_epoch} of 2" in best_card
    assert f"best/ holds the weights of epoch {best_epoch}" in best_card
    results = json.loads((out / "results.json").read_text())
    assert results["split"] == "test" and results["images"] == 400 and results["epochs"] == 2
    assert results["command"].startswith("python -m snnzoo.train snasnet_fmnist --width 4")
    assert 0 <= results["top1"] <= 100 and results["firing_rates"]
    card = (out / "README.md").read_text()
    assert f"top-1 {results['top1']:.2f}%" in card and "validation hold-out" in card
    # The card's front matter names the data set by its Hub id (the sample is Fashion-MNIST's).
    assert "datasets:\n- zalando-datasets/fashion_mnist\n---" in card
    assert hub.validate_model_folder(out / "best") == []


def test_interrupted_training_resumes_exactly(tmp_path, monkeypatch):
    _train(tmp_path / "whole", "--epochs", "2")
    whole = hub.load_state_dict(tmp_path / "whole" / "model.safetensors")
    _train_until_stopped(monkeypatch, tmp_path / "parts", 5, "--epochs", "2")  # epoch 2, step 2
    saved = torch.load(tmp_path / "parts" / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == (1, 2)
    with pytest.raises(SystemExit, match="pass --resume"):
        _train(tmp_path / "parts", "--epochs", "2")
    _train(tmp_path / "parts", "--epochs", "2", "--resume")
    resumed = hub.load_state_dict(tmp_path / "parts" / "model.safetensors")
    for key in whole:
        assert torch.equal(resumed[key], whole[key]), f"{key} differs after resuming"
    assert (tmp_path / "parts" / "log.csv").read_text().count("\n") == 3


def test_resume_keeps_the_run_options_and_refuses_changed_ones(tmp_path, monkeypatch):
    options = ["--epochs", "2", "--val-split", "0.1", "--lr", "0.05", "--seed", "3"]
    _train(tmp_path / "whole", *options)
    whole = hub.load_state_dict(tmp_path / "whole" / "model.safetensors")
    out = tmp_path / "parts"
    _train_until_stopped(monkeypatch, out, 4, *options)  # epoch 2, step 1
    checkpoint_bytes = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(SystemExit) as refused:
        _train(out, "--resume", "--lr", "0.1", "--width", "8", "--epochs", "2")
    message = str(refused.value.code)
    assert "--lr 0.05 -> 0.1" in message and "--width 4 -> 8" in message
    assert "--epochs" not in message.split("options:")[1], "an unchanged option is not named"
    with pytest.raises(SystemExit, match=r"--epochs 2 -> 3 .*cosine schedule"):
        _train(out, "--resume", "--epochs", "3")
    assert (out / "checkpoint.pt").read_bytes() == checkpoint_bytes, "a refused resume wrote"
    # Checkpoints before this change stored every option as a string and the command of the
    # last resume: make this one so, then resume naming nothing but the model and the folder.
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    saved["args"] = {key: str(value) for key, value in saved["args"].items()}
    saved["args"]["command"] += " --resume"
    torch.save(saved, out / "checkpoint.pt")
    assert train_module.main(["snasnet_fmnist", "--out", str(out), "--resume"]) == 0
    resumed = hub.load_state_dict(out / "model.safetensors")
    for key in whole:
        assert torch.equal(resumed[key], whole[key]), f"{key} differs: an option was not kept"
    assert [row["val_top1"] for row in _log(out)] == [
        row["val_top1"] for row in _log(tmp_path / "whole")]
    results = json.loads((out / "results.json").read_text())
    original = "python -m snnzoo.train " + shlex.join([*FAST, "--out", str(out), *options])
    assert results["command"] == original
    assert "--resume" not in results["command"] and "--resume" not in (out / "README.md").read_text()


def test_an_epoch_resumed_partway_logs_all_of_it(tmp_path, monkeypatch):
    """Stopped at epoch 1's last step after 1000 s (a clock moved on at the stop): the resumed
    epoch logs the loss and top-1 of all its steps, as the uninterrupted run does, and its time."""
    _train(tmp_path / "whole", "--epochs", "2")
    clock = {"offset": 0.0}
    real_time = train_module.time
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(
        monotonic=lambda: real_time.monotonic() + clock["offset"]))
    out = tmp_path / "parts"
    _train_until_stopped(monkeypatch, out, 3, "--epochs", "2",
                         on_stop=lambda: clock.update(offset=1000.0))
    monkeypatch.setattr(train_module, "time", real_time)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*lr_scheduler")  # no optimiser step ran
        assert _train(out, "--epochs", "2", "--resume") == 0
    for resumed, uninterrupted in zip(_log(out), _log(tmp_path / "whole"), strict=True):
        for field in ("train_loss", "train_top1", "test_top1"):
            assert resumed[field] == uninterrupted[field], (resumed["epoch"], field)
    assert float(_log(out)[0]["seconds"]) >= 1000, "the time before the stop is lost"
    assert json.loads((out / "results.json").read_text())["training_time"] == "0.3 h"


def test_resuming_a_finished_run_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    _train(out, "--epochs", "1")
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert _train(out, "--epochs", "1", "--resume") == 0
    assert "finished run" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    with pytest.raises(SystemExit, match="--epochs 1 -> 2"):  # not a silent "finished"
        _train(out, "--epochs", "2", "--resume")


def test_a_run_finished_before_the_record_existed_is_not_redone(tmp_path, monkeypatch, capsys):
    # Such a run kept checkpoint.pt (at its last epoch) beside results.json.
    out = tmp_path / "run"
    monkeypatch.setattr(train_module, "_finish", lambda *args: None)
    _train(out, "--epochs", "1")
    monkeypatch.undo()
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert (out / "checkpoint.pt") in before
    assert _train(out, "--epochs", "1", "--resume") == 0
    assert "checkpoint.pt is no longer needed" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_a_new_run_over_an_earlier_one_is_refused(tmp_path):
    out = tmp_path / "run"
    _train(out, "--epochs", "1", "--val-split", "0.1")
    with pytest.raises(SystemExit, match="finished run"):
        _train(out, "--epochs", "1")
    (out / ".training_run.json").unlink()  # a run folder of before: no record, no checkpoint
    with pytest.raises(SystemExit, match=r"earlier run \(log.csv, model.safetensors, best\)"):
        _train(out, "--epochs", "1")


def test_a_truncated_checkpoint_is_named(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _train_until_stopped(monkeypatch, out, 2, "--epochs", "1")
    data = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(data[:len(data) // 2])
    with pytest.raises(SystemExit, match=r"checkpoint.pt is corrupted or truncated"):
        _train(out, "--epochs", "1", "--resume")


@pytest.mark.parametrize("option, value, expected", [
    ("--batch-size", "0", "must be at least 1"),
    ("--eval-batch-size", "0", "must be at least 1"),
    ("--max-steps", "0", "must be at least 1"),
    ("--epochs", "0", "must be at least 1"),
    ("--lr", "0", "must be greater than 0"),
    ("--val-split", "1", "must be in [0, 1)"),
])
def test_nonsense_options_are_refused_when_parsed(tmp_path, capsys, option, value, expected):
    with pytest.raises(SystemExit) as refused:
        _train(tmp_path / "run", option, value)
    assert refused.value.code == 2
    printed = capsys.readouterr().err
    assert option in printed and expected in printed, printed
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--batch-size", "2000"], r"--batch-size 2000 is more than the 1600 training images.*use "
                               r"--batch-size 1600 or less"),
    (["--batch-size", "1500", "--val-split", "0.1"], r"1440 training images.*after --val-split 0.1"),
    (["--val-split", "0.0001"], r"--val-split 0.0001 of the 1600 training images holds out none"),
    (["--val-split", "0.9999"], r"holds out 1600 of the 1600 .* leaving 0 to train on; use a "
                                r"smaller --val-split"),
])
def test_splits_too_small_are_refused_before_training(tmp_path, extra, expected):
    # The embedded sample has 1,600 training images.
    with pytest.raises(SystemExit, match=expected):
        _train(tmp_path / "run", "--epochs", "1", *extra)
    assert not (tmp_path / "run" / "log.csv").exists()


@pytest.mark.parametrize("dataset, expected", [
    ("cifar10", r"^error: CIFAR-10: not found\. Searched:\n.*--download"),
    ("no-such-data", r"^error: unknown data set 'no-such-data'; choose one of"),
])
def test_missing_or_unknown_data_ends_with_one_error(tmp_path, dataset, expected):
    """One `error:` message listing the ways to get the data, not a traceback."""
    with pytest.raises(SystemExit) as refused:
        train_module.main(["snasnet_cifar10", "--width", "4", "--dataset", dataset, "--data-dir",
                           str(tmp_path / "data"), "--out", str(tmp_path / "run")])
    assert re.match(expected, str(refused.value.code), re.DOTALL), refused.value.code
    assert not (tmp_path / "run").exists()


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        _train(tmp_path / "none", "--resume")


@pytest.mark.slow
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
    options = ["--epochs", "2", "--torchcompile", "--timesteps", "2", "--val-split", "0.1"]
    _train_until_stopped(monkeypatch, out, 4, *options)  # epoch 2, step 1
    assert hub.validate_model_folder(out / "best") == []  # loads strictly into a new model
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=False)
    assert not any(key.startswith("_orig_mod") for key in checkpoint["model"])
    assert _train(out, *options, "--resume") == 0
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) == 3 and all(math.isfinite(float(row.split(",")[2])) for row in rows[1:])
    assert len(compiled) == 2 and all(hasattr(module, "stem") for module in compiled)


@pytest.mark.slow
def test_torch_compile_trains_with_inductor():
    # torch.compile's default backend must functionalise a training step: BatchNorm per step
    # (with its running statistics updated T times) and the neurons' state between steps.
    # The network and batch of the compiled training above (FAST, T=2): inductor finds the
    # graph it compiled there in its cache.
    torch.manual_seed(0)
    model = snnzoo.create_model("snasnet_fmnist", width=4, timesteps=2).train()
    torch.compile(model)(torch.randn(16, 1, 28, 28)).sum().backward()
    assert all(parameter.grad is not None for parameter in model.parameters())
    assert int(model.transition[0].num_batches_tracked) == model.timesteps


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--torchcompile", "aot_eager", "--timesteps", "2"]],
                         ids=["eager", "compiled"])
def test_torchrun_two_cpu_processes(tmp_path, extra):
    # Compiled: torch.compile wraps the DDP module (dynamo splits its graph at the gradient
    # buckets); the folder and checkpoint keep the model's own names. aot_eager: what is new
    # here is DDP under dynamo and AOT autograd; inductor's kernels for this training step are
    # the ones test_compiled_training_writes_loadable_weights compiles.
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
    assert hub.validate_model_folder(tmp_path / "ddp") == []  # the finished folder as it is


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


def test_a_resume_accepts_an_option_written_another_way(tmp_path, monkeypatch):
    same = train_module._same_option
    assert same("genotype", "0302 0030 3003 1000", "0302-0030-3003-1000", {"cell": "backward"})
    assert not same("genotype", "0302 0030 3003 1000", "0302 0030 3003 0000", {})
    (tmp_path / "flowers").mkdir()
    monkeypatch.chdir(tmp_path)
    recorded = train_module._dataset_option("flowers")  # as a run records it when it starts
    assert recorded == str(tmp_path / "flowers")
    assert same("dataset", recorded, "./flowers", {}) and same("dataset", recorded, recorded, {})
    assert not same("dataset", recorded, "fashion-mnist", {})
    assert train_module._dataset_option("fashion-mnist") == "fashion-mnist"


def test_default_optimiser_is_the_authors_as_their_code_ran(tmp_path, monkeypatch):
    # The authors' search_snn.py line 87: torch.optim.SGD(model.parameters(), args.learning_rate,
    # args.momentum, args.weight_decay), with config.py's defaults 0.1, 0.9 and 5e-4 (lines
    # 21-23). Positionally, SGD's fourth parameter is dampening: their runs had no weight decay.
    built, authors_sgd = [], torch.optim.SGD

    class RecordingSGD(authors_sgd):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(train_module.torch.optim, "SGD", RecordingSGD)
    assert _train(tmp_path / "run", "--epochs", "1") == 0
    ours = built[0].defaults
    theirs = authors_sgd([torch.nn.Parameter(torch.zeros(1))], 0.1, 0.9, 5e-4).defaults
    assert theirs["weight_decay"] == 0 and theirs["dampening"] == 5e-4
    for key in ("lr", "momentum", "dampening", "weight_decay", "nesterov"):
        assert ours[key] == theirs[key], key
    card = (tmp_path / "run" / "README.md").read_text()
    assert "dampening 0.0005, weight decay 0.0" in card


def test_a_run_recorded_before_dampening_resumes_without_it(tmp_path, monkeypatch):
    args = train_module.parse_args([*FAST, "--out", str(tmp_path)])
    saved = {key: value for key, value in train_module._saved_args(args).items()
             if key != "dampening"}
    saved["weight_decay"] = 5e-4  # what such a run trained with
    resumed = train_module.resumed_args(train_module.parse_args([*FAST, "--out", str(tmp_path),
                                                                  "--resume"]),
                                        saved, tmp_path)
    assert resumed.dampening == 0.0 and resumed.weight_decay == 5e-4


@pytest.mark.parametrize("option, value", [("--lr", "nan"), ("--lr", "inf"), ("--momentum", "nan"),
                                           ("--dampening", "-1"), ("--weight-decay", "inf")])
def test_non_finite_or_negative_optimiser_options_are_refused(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as refused:
        _train(tmp_path / "run", option, value)
    assert refused.value.code == 2
    assert option in capsys.readouterr().err


@pytest.mark.parametrize("lr", ["1e30", "1e38"])
def test_a_diverging_run_stops_with_one_error_and_saves_no_non_finite_weights(tmp_path, lr):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        _train(out, "--epochs", "1", "--lr", lr)
    message = str(stopped.value.code)
    assert message.startswith("error: ") and "smaller --lr" in message, message
    assert not (out / hub.WEIGHTS_FILENAME).exists()
    assert not (out / "log.csv").exists(), "nothing of the diverged epoch is logged"
    if (out / "checkpoint.pt").exists():
        saved = torch.load(out / "checkpoint.pt", weights_only=False)["model"]
        assert not hub.non_finite_tensors(saved)


def test_saving_or_publishing_non_finite_weights_is_refused(tmp_path):
    import snnzoo
    model = snnzoo.create_model("snasnet_fmnist", width=4)
    folder = hub.save_pretrained(model, tmp_path / "good")
    with torch.no_grad():
        model.stem[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 tensor\(s\) \(stem.0.weight\)"):
        hub.save_pretrained(model, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    # a folder whose weights were replaced on disk (digest recorded again) is refused by publish
    from safetensors.torch import save_file
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / hub.WEIGHTS_FILENAME, metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["pretrained_cfg"]["hf_hub_sha256"] = hub.file_sha256(folder / hub.WEIGHTS_FILENAME)
    (folder / "config.json").write_text(json.dumps(config))
    problems = hub.validate_model_folder(folder)
    assert any("NaN or infinite" in problem for problem in problems), problems


def test_a_new_run_into_a_folder_of_other_files_is_refused(tmp_path):
    out = tmp_path / "variant"
    out.mkdir()
    (out / "README.md").write_text("a searched variant's card\n")
    (out / "cell.png").write_bytes(b"png")
    with pytest.raises(SystemExit, match=r"holds README.md, cell.png: a run writes only into a new "
                                         r"or empty folder"):
        _train(out)
    assert sorted(path.name for path in out.iterdir()) == ["README.md", "cell.png"]


@pytest.mark.parametrize("option, value", [("--momentum", "1"), ("--momentum", "9"),
                                           ("--dampening", "1.5")])
def test_momentum_and_dampening_must_be_fractions(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as refused:
        _train(tmp_path / "run", option, value)
    assert refused.value.code == 2 and "must be at least 0 and" in capsys.readouterr().err


def test_debug_backends_of_torch_compile_are_accepted():
    args = train_module.parse_args(["snasnet_fmnist", "--torchcompile", "eager"])
    assert args.torchcompile == "eager"


def test_hidden_and_temporary_files_do_not_make_a_folder_taken(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".DS_Store").write_bytes(b"")
    (out / "checkpoint.pt.tmp").write_bytes(b"cut short by a kill")
    assert train_module._run_folder_problem(out) is None
