"""The precision switch: model.set_precision, --precision on the command-line tools, the
deprecated --amp, and the refusals and warnings of snnzoo.precision."""

import warnings

import pytest
import torch
from torch import nn

import snnzoo
from snnzoo import precision as precision_module
from snnzoo import train as train_module
from snnzoo.evaluate import SpikeCounter, evaluate
from snnzoo.layers import LIF
from snnzoo.models.reference import excite
from snnzoo.search.__main__ import parse_args as search_args
from snnzoo.validate import main as validate_main


def _tiny(**kwargs):
    torch.manual_seed(0)
    return excite(snnzoo.create_model("snasnet_fmnist", width=4, classifier_width=16,
                                      drop_rate=0.0, **kwargs)).eval()


def _images(batch=4):
    return torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_fp32_is_the_default_and_unknown_precisions_are_refused():
    model = _tiny()
    assert model.precision == "fp32"
    for name in ("fp16", "bfloat16", "BF16", None):
        with pytest.raises(ValueError, match=r"\['fp32', 'bf16', 'bf16x3'\]"):
            model.set_precision(name)
    assert model.precision == "fp32"


@pytest.fixture
def native_cpu(monkeypatch):
    """This CPU as one with native bfloat16 (no emulation warning), whatever it is."""
    monkeypatch.setattr(precision_module, "_cpu_flags", lambda: {"avx512_bf16"})
    precision_module.native_bf16.cache_clear()
    yield
    precision_module.native_bf16.cache_clear()


def test_bf16_is_what_a_users_autocast_gives(native_cpu):
    # The same operations either way, so the same floats: compared exactly.
    model, images = _tiny(), _images()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        theirs = model(images)
    ours = model.set_precision("bf16")(images)
    assert ours.dtype == theirs.dtype == torch.float32  # the vote is averaged in float32
    assert torch.equal(ours, theirs)
    fp32 = model.set_precision("fp32")(images)
    assert not torch.equal(fp32, ours), "bf16 computed nothing in bfloat16"


def test_bf16_convolutions_feed_float32_membranes(native_cpu):
    model = _tiny().set_precision("bf16")
    outputs, membranes = {}, []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(
                lambda m, i, o, name=name: outputs.update({name: o.dtype}) and None)
    for module in model.modules():
        if isinstance(module, LIF):
            module.register_spike_hook(lambda lif, s, multistep: membranes.append(lif.v))
    with torch.no_grad():
        model(_images())
    assert outputs and set(outputs.values()) == {torch.bfloat16}, outputs
    stepped = [v for v in membranes if v is not None]  # the backward cells' stateful neurons
    assert stepped and {v.dtype for v in stepped} == {torch.float32}


def test_spikes_in_bfloat16_are_counted_exactly():
    # 1000 spikes: a bfloat16 sum would round the count to a multiple of 4 (1000 is one; 1001
    # is not, and bfloat16 has no 1001).
    counter = SpikeCounter(nn.Sequential(LIF()))
    lif = counter.layers.copy().popitem()[0]
    spikes = torch.zeros(1001, dtype=torch.bfloat16)
    spikes[:1001] = 1
    with counter:
        lif._run_spike_hooks(spikes.view(1, 1001), True)
    assert counter.spikes["0"] == 1001


def test_bf16_on_a_cpu_without_native_bfloat16_warns_once(monkeypatch):
    monkeypatch.setattr(precision_module, "_cpu_flags", lambda: {"avx2", "avx512f"})
    monkeypatch.setattr(precision_module, "_warned", set())
    precision_module.native_bf16.cache_clear()
    try:
        model = _tiny().set_precision("bf16")
        with pytest.warns(RuntimeWarning, match="emulates it.*use precision 'fp32'"):
            model(_images())
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model(_images())  # once per device type
    finally:
        precision_module.native_bf16.cache_clear()


def test_native_bf16_reads_the_cpu_flags(tmp_path):
    for text, native in (("flags\t\t: fpu avx512f avx512_bf16\n", True),
                         ("flags\t\t: fpu avx2\n", False),
                         ("Features\t: fp asimd bf16\n", True)):
        (tmp_path / "cpuinfo").write_text(text)
        flags = precision_module._cpu_flags(tmp_path / "cpuinfo")
        assert any(flag in flags for flag in precision_module.NATIVE_BF16_FLAGS) is native
    assert precision_module._cpu_flags(tmp_path / "missing") is None


def test_evaluate_takes_a_precision_and_the_former_amp_flag(native_cpu):
    model, images = _tiny(), _images(8)
    batches = [(images, torch.arange(8) % 10)]
    bf16 = evaluate(model, batches, torch.device("cpu"), "bf16")
    with pytest.warns(DeprecationWarning, match="precision='bf16'"):
        assert evaluate(model, batches, torch.device("cpu"), True) == bf16
    with pytest.warns(DeprecationWarning):
        assert evaluate(model, batches, torch.device("cpu"), amp=True) == bf16
    assert model.precision == "fp32", "evaluate leaves the model's own setting alone"


@pytest.mark.parametrize("parse", [
    lambda argv: train_module.parse_args(["snasnet_fmnist", *argv]),
    lambda argv: search_args(argv),
], ids=["train", "search"])
def test_precision_option(parse, capsys):
    assert parse([]).precision == "fp32"
    assert parse(["--precision", "bf16"]).precision == "bf16"
    with pytest.raises(SystemExit) as refused:
        parse(["--precision", "fp16"])
    assert refused.value.code == 2
    assert ("precision='fp16' is unknown; choose one of ['fp32', 'bf16', 'bf16x3']"
            in capsys.readouterr().err)


def test_amp_is_deprecated_for_precision_bf16(capsys):
    args = train_module.parse_args(["snasnet_fmnist", "--amp"])
    assert args.precision == "bf16" and "precision" in args.given
    assert "--amp is deprecated" in capsys.readouterr().err
    assert train_module.parse_args(["snasnet_fmnist", "--no-amp"]).precision == "fp32"
    with pytest.raises(SystemExit):
        validate_main(["snasnet_fmnist", "--amp", "--precision", "fp64"])


def test_a_run_recorded_with_amp_resumes_in_bf16(tmp_path):
    args = train_module.parse_args(["snasnet_fmnist", "--out", str(tmp_path)])
    saved = dict(vars(args), amp=True, out=str(tmp_path))
    del saved["precision"], saved["given"]
    resumed = train_module.resumed_args(args, saved, tmp_path / "checkpoint.pt")
    assert resumed.precision == "bf16" and not hasattr(resumed, "amp")
    explicit = train_module.parse_args(["snasnet_fmnist", "--out", str(tmp_path), "--precision",
                                        "fp32"])
    assert train_module.resumed_args(explicit, saved, tmp_path / "c.pt").precision == "fp32"


def test_search_records_its_precision_and_reads_old_runs_as_fp32():
    from snnzoo.search import run
    assert "precision" in run.RUN_KEYS and run.RUN_KEY_DEFAULTS["precision"] == "fp32"
    marker = dict(run_id="x", settings=dict(dataset="fashion-mnist-sample"))
    assert run._recorded(marker)["precision"] == "fp32"


def test_bf16x3_convolves_spikes_in_limbs_and_keeps_float32(monkeypatch):
    # The limbs give float32 up to summation order: on this seeded network no membrane lies
    # within that rounding of the threshold, so the predictions are the same and the logits
    # agree to float32 rounding of the vote (1e-5).
    from snnzoo.models import cells
    calls = []
    spike_conv2d = cells.spike_conv2d
    monkeypatch.setattr(cells, "spike_conv2d",
                        lambda *a, **k: calls.append(1) or spike_conv2d(*a, **k))
    model, images = _tiny(), _images(8)
    with torch.no_grad():
        fp32 = model(images)
        with pytest.warns(RuntimeWarning, match="bf16x3' is for CUDA GPUs"):
            limbs = model.set_precision("bf16x3")(images)
    spike_convs = [m for m in model.modules() if getattr(m, "spike_limbs", False)]
    assert model.stem[0] not in spike_convs and model.transition[2] in spike_convs
    assert len(spike_convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules()) - 1
    assert calls, "no convolution went through snnzoo.kernels.spike_conv"
    assert torch.equal(fp32.argmax(1), limbs.argmax(1))
    torch.testing.assert_close(limbs, fp32, atol=1e-5, rtol=0)
    calls.clear()
    model.train()(images).sum().backward()  # training: torch's float32 convolution
    assert not calls
    from timm.utils import reparameterize_model
    fused = reparameterize_model(model.eval())
    assert fused.transition[2].spike_limbs, "fusing keeps the convolutions' precision"
    assert model.set_precision("fp32").transition[2].spike_limbs is False


def test_evaluate_uses_the_models_own_precision_unless_told():
    model, images = _tiny().set_precision("bf16"), _images(8)
    batches = [(images, torch.arange(8) % 10)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bf16 emulated on some CPUs
        as_set = evaluate(model, batches, torch.device("cpu"))
        told = evaluate(model, batches, torch.device("cpu"), "fp32")
    assert as_set == evaluate(model.set_precision("fp32"), batches, torch.device("cpu"), "bf16")
    assert told == evaluate(model, batches, torch.device("cpu"))
    assert model.precision == "fp32"
    with pytest.raises(ValueError, match="bf16x3' needs an snnzoo model"):
        evaluate(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), batches, torch.device("cpu"),
                 "bf16x3")
