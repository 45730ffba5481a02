"""The spike convolution (snnzoo.kernels.spike_conv): the limb split, the Triton kernel (under
the interpreter here) and the reference against float32 conv2d computed in float64, every
spike dtype and layout, the BatchNorm epilogue, a case computed by hand, the refusals, and the
spikes of a real SNASNet whose spike-input convolutions run through the kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_close, assert_equal
from snnzoo.kernels.spike_conv import (batch_norm_scale_shift, spike_conv2d,
                                       spike_conv2d_reference, spike_conv_bn, split_limbs)

pytest.importorskip("triton", reason="the Triton kernel needs the triton package (Linux)")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from spike_flips import spikes_and_logits  # noqa: E402

BACKENDS = ("triton", "torch")
# float32 summed in another order than torch's: a few units of 2^-24 relative in norm
RELATIVE_ERROR = 1e-6


def _spikes(*shape, density=0.3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator) < density).float()


def _weight(*shape, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator) * 0.3


def _relative_error(actual, expected):
    return ((actual.double() - expected).norm() / expected.norm()).item()


def test_split_limbs_sum_to_the_weight():
    generator = torch.Generator().manual_seed(0)
    magnitudes = 10.0 ** (torch.rand(20000, generator=generator) * 40 - 30)
    weight = (torch.randn(20000, generator=generator) * magnitudes).float()
    weight = torch.cat([weight, torch.tensor([0.0, -0.0, 1.0, -3.0, 3.38e38, 2.0**-110, 1 / 3])])
    limbs = split_limbs(weight)
    assert all(limb.dtype == torch.bfloat16 and limb.shape == weight.shape for limb in limbs)
    first, second, third = (limb.double() for limb in limbs)
    assert_equal(first + second + third, weight.double(), "w1 + w2 + w3 in float64")
    assert_equal((limbs[0].float() + limbs[1].float()) + limbs[2].float(), weight,
                 "(w1 + w2) + w3 in float32")
    assert bool((second.abs() <= first.abs() * 2.0 ** -8).all())  # each limb the next bits
    assert bool((third.abs() <= second.abs() * 2.0 ** -8).all())
    # below 2^-110 the last limb is a bfloat16 subnormal (spacing 2^-133): half of it is lost
    tiny = torch.tensor([1.2e-38, 1e-40, -3e-39, 2.0**-126])
    error = sum(limb.double() for limb in split_limbs(tiny)) - tiny.double()
    assert bool((error.abs() <= 2.0**-134).all()), error


def test_split_limbs_by_hand():
    # 1 + 2^-10 + 2^-20: bfloat16 keeps 8 significant bits, so 1, then 2^-10, then 2^-20;
    # -(2 + 2^-8 + 2^-17): 2^-8 is under half a bfloat16 unit at 2 (2^-7), so -2, -2^-8, -2^-17
    weight = torch.tensor([1 + 2**-10 + 2**-20, -(2 + 2**-8 + 2**-17)])
    expected = ([1.0, -2.0], [2**-10, -(2**-8)], [2**-20, -(2**-17)])
    for limb, values in zip(split_limbs(weight), expected):
        assert limb.float().tolist() == values


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_case_computed_by_hand(backend):
    """One 3x3 window: the output is the sum of the five weights under a spike, and every
    partial sum of these dyadic numbers is exact in float32, in any order."""
    spikes = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=torch.bool).view(1, 1, 3, 3)
    a, b = 1 + 2**-10 + 2**-20, -(2 + 2**-8 + 2**-17)
    weight = torch.tensor([[a, 5.0, b], [7.0, 0.25, 9.0], [0.5, -0.25, 11.0]]).view(1, 1, 3, 3)
    # a + b + 0.25 + 0.5 - 0.25 = -0.5 - 2^-8 + 2^-10 - 2^-17 + 2^-20
    expected = -0.5 - 2**-8 + 2**-10 - 2**-17 + 2**-20
    out = spike_conv2d(spikes, weight, backend=backend)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 1, 1)
    assert out.item() == expected
    # bias 1, then * 2 + 0.5: (expected + 1) * 2 + 0.5, exact as well
    affine = spike_conv2d(spikes, weight, torch.tensor([1.0]), scale=torch.tensor([2.0]),
                          shift=torch.tensor([0.5]), backend=backend)
    assert affine.item() == (expected + 1) * 2 + 0.5


CASES = {  # name: (spikes shape, out channels, kernel, stride, padding)
    "3x3 s1 p1, 162 pixels (two pixel blocks)": ((2, 5, 9, 9), 6, (3, 3), 1, 1),
    "1x1, 70 channels (two channel blocks each way)": ((1, 70, 4, 3), 70, (1, 1), 1, 0),
    "3x2 s(2,1) p(1,0), [T, B, ...]": ((3, 2, 4, 7, 6), 17, (3, 2), (2, 1), (1, 0)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_matches_float32_conv_computed_in_float64(case, backend):
    shape, out_channels, kernel, stride, padding = CASES[case]
    spikes = _spikes(*shape)
    weight = _weight(out_channels, shape[-3], *kernel)
    out = spike_conv2d(spikes, weight, stride=stride, padding=padding, backend=backend)
    folded = spikes.flatten(0, 1) if spikes.dim() == 5 else spikes
    exact = F.conv2d(folded.double(), weight.double(), None, stride, padding)
    exact = exact.view(*shape[:-3], *exact.shape[1:])
    assert out.dtype == torch.float32 and out.shape == exact.shape
    error = _relative_error(out, exact)
    float32 = F.conv2d(folded, weight, None, stride, padding)
    float32_error = _relative_error(float32, exact.flatten(0, -4))
    print(f"{case} [{backend}]: relative error in norm {error:.3g} "
          f"(float32 F.conv2d: {float32_error:.3g})")
    assert error <= RELATIVE_ERROR, f"{case}: relative error {error:.3g} > {RELATIVE_ERROR}"
    assert_close(out, exact, atol=1e-6, rtol=1e-6, what=f"{case} [{backend}] vs float64")


def test_every_spike_dtype_and_layout_gives_the_same_floats():
    """The kernel reads the same 0/1 whatever their dtype and strides: bitwise equal outputs;
    channels_last in gives channels_last out."""
    spikes = _spikes(2, 20, 6, 5)
    weight = _weight(18, 20, 3, 3)
    expected = spike_conv2d(spikes, weight, padding=1, backend="triton")
    variants = {str(dtype): spikes.to(dtype) for dtype in (torch.float16, torch.bfloat16,
                                                           torch.float64, torch.uint8, torch.bool)}
    variants["channels_last"] = spikes.contiguous(memory_format=torch.channels_last)
    variants["a strided view"] = torch.stack([spikes, spikes], dim=-1)[..., 0]
    for name, variant in variants.items():
        out = spike_conv2d(variant, weight, padding=1, backend="triton")
        assert_equal(out, expected, f"spikes as {name}")
    out = spike_conv2d(variants["channels_last"], weight, padding=1, backend="triton")
    assert out.is_contiguous(memory_format=torch.channels_last)
    reference = spike_conv2d(variants["channels_last"], weight, padding=1, backend="torch")
    assert_close(reference, expected, atol=1e-6, rtol=1e-6, what="reference vs kernel")


def test_auto_runs_the_reference_on_the_cpu():
    spikes, weight = _spikes(1, 3, 5, 5), _weight(4, 3, 3, 3)
    assert_equal(spike_conv2d(spikes, weight, padding=1),
                 spike_conv2d_reference(spikes, weight, padding=1), "auto vs reference")


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_norm_epilogue(backend):
    generator = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(12, 10, 3, padding=1, bias=True)
    bn = nn.BatchNorm2d(10).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(10, generator=generator))
        bn.running_var.copy_(torch.rand(10, generator=generator) + 0.1)
        bn.weight.copy_(torch.randn(10, generator=generator))
        bn.bias.copy_(torch.randn(10, generator=generator))
        spikes = _spikes(3, 12, 5, 5)
        expected = bn(conv(spikes))
        exact = F.batch_norm(F.conv2d(spikes.double(), conv.weight.double(), conv.bias.double(),
                                      padding=1), bn.running_mean.double(),
                             bn.running_var.double(), bn.weight.double(), bn.bias.double(),
                             False, 0.0, bn.eps)
    out = spike_conv_bn(spikes, conv, bn, backend=backend)
    assert _relative_error(out, exact) <= RELATIVE_ERROR
    assert_close(out, expected, atol=1e-5, rtol=1e-5, what=f"conv+BN [{backend}] vs torch")
    assert_close(spike_conv_bn(spikes, conv, backend=backend), conv(spikes).detach(),
                 atol=1e-5, rtol=1e-5, what="conv alone")


def test_batch_norm_scale_shift_give_torchs_eval_batch_norm():
    """x * scale + shift is torch's eval BatchNorm up to float32 rounding: torch's CPU kernel
    orders its operations otherwise, so they agree within a few units of 2^-24 of the terms'
    size |x scale| + |shift| (not of the result, which may cancel)."""
    bn = nn.BatchNorm2d(7).eval()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for buffer in (bn.running_mean, bn.weight, bn.bias):
            buffer.copy_(torch.randn(7, generator=generator))
        bn.running_var.copy_(torch.rand(7, generator=generator) + 0.01)
        x = torch.randn(4, 7, 3, 3, generator=generator)
        scale, shift = batch_norm_scale_shift(bn)
        assert scale.dtype == shift.dtype == torch.float32
        scaled, shift = x * scale.view(1, -1, 1, 1), shift.view(1, -1, 1, 1)
        difference = (scaled + shift - bn(x)).abs()
        size = scaled.abs() + shift.abs()
        assert bool((difference <= 4 * 2.0**-24 * size).all()), (difference / size).max()


def test_refuses_what_it_cannot_compute(monkeypatch):
    spikes, weight = _spikes(1, 3, 5, 5), _weight(4, 3, 3, 3)
    bad_calls = {
        "dtype torch.int64 is unsupported": lambda: spike_conv2d(spikes.long(), weight),
        "must be [N, C, H, W] or [T, B, C, H, W]": lambda: spike_conv2d(spikes[0], weight),
        "weight must be float32": lambda: spike_conv2d(spikes, weight.double()),
        "expects 3 input channels": lambda: spike_conv2d(spikes[:, :2], weight),
        "groups=3 is unsupported": lambda: spike_conv2d(spikes, weight[:, :1], groups=3),
        "dilation=2 is unsupported": lambda: spike_conv2d(spikes, weight, dilation=2),
        "stride=(0, 0) must be positive": lambda: spike_conv2d(spikes, weight, stride=0),
        "padding='same' must be an int": lambda: spike_conv2d(spikes, weight, padding="same"),
        "scale and shift come together": lambda: spike_conv2d(spikes, weight,
                                                              scale=torch.ones(4)),
        "bias must be float32 [4]": lambda: spike_conv2d(spikes, weight, torch.ones(3)),
        "smaller than the kernel": lambda: spike_conv2d(spikes[..., :2], weight),
        "backend='cuda' is unknown": lambda: spike_conv2d(spikes, weight, backend="cuda"),
        "must be in eval mode": lambda: batch_norm_scale_shift(nn.BatchNorm2d(4)),
        "padding_mode='reflect'": lambda: spike_conv_bn(
            spikes, nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")),
    }
    for message, call in bad_calls.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            call()
    with pytest.raises(RuntimeError, match="has no backward"):
        spike_conv2d(spikes, weight.requires_grad_())
    with torch.no_grad():  # the same call is inference under no_grad
        spike_conv2d(spikes, weight)
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="needs CUDA tensors"):
        spike_conv2d(spikes, weight.detach(), backend="triton")


def _spike_input_convs(model):
    """Every convolution of the model but the stem's, which sees pixels."""
    stem = {id(module) for module in model.stem.modules()}
    return [module for module in model.modules()
            if isinstance(module, nn.Conv2d) and id(module) not in stem]


def _all_spikes(model, images):
    """(every LIF output flattened into one float tensor, the logits); whole sequences a call."""
    recorded, logits = spikes_and_logits(model, images)
    return torch.cat([spikes.flatten() for spikes in recorded]), logits


@pytest.mark.slow
def test_snasnet_spikes_through_the_kernel(monkeypatch):
    """A tiny SNASNet whose spike-input convolutions (cell edges, transition) run through the
    Triton kernel fires the same spikes as with torch's float32 convolutions, except where a
    membrane lies within rounding of the threshold.

    The kernel's convolutions differ from torch's by float32 rounding (relative ~1e-7, checked
    per call). A spike can then flip only where the membrane is within about that much of the
    threshold. Such neurons are counted directly: the spikes that change when every neuron's
    threshold moves from 1 - 2^-16 to 1 + 2^-16 (a margin 100 times the rounding). The flips
    must be no more than those near-threshold neurons, and these a tiny fraction (< 1e-3) of
    all neuron-steps. Measured here: 0 flips, 0 neurons within the margin."""
    import snnzoo
    from snnzoo.layers import LIF
    monkeypatch.setenv("SNNZOO_COMPILE_CPU", "0")  # the neurons eager: compiling them is tested
    torch.manual_seed(0)                          # elsewhere, and costs more than this test
    # 12x12 images instead of 28x28: the interpreter's time goes with the pixels
    model = snnzoo.create_model("snasnet_fmnist", width=4, classifier_width=16,
                                img_size=12).eval()
    with torch.no_grad():  # an untrained network this small is nearly silent: louder BatchNorms
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.mul_(3)
    images = torch.rand(2, 1, 12, 12) * 2
    convs = _spike_input_convs(model)
    baseline, baseline_logits = _all_spikes(model, images)
    assert baseline.sum() > 1000, "too few spikes to compare anything"

    errors = []

    def through_the_kernel(conv, inputs, output):
        (spikes,) = inputs
        assert bool(((spikes == 0) | (spikes == 1)).all()), f"{conv} sees non-spikes"
        out = spike_conv2d(spikes, conv.weight, conv.bias, conv.stride, conv.padding,
                           backend="triton")
        exact = F.conv2d(spikes.flatten(0, -4).double(), conv.weight.double(), None,
                         conv.stride, conv.padding)
        if exact.norm() > 0:
            errors.append(_relative_error(out.flatten(0, -4), exact))
        return out

    handles = [conv.register_forward_hook(through_the_kernel) for conv in convs]
    try:
        kernel_spikes, kernel_logits = _all_spikes(model, images)
    finally:
        for handle in handles:
            handle.remove()
    assert len(convs) >= 3 and errors, f"spike-input convs found: {len(convs)}"
    assert max(errors) <= RELATIVE_ERROR, f"per-call relative errors {max(errors):.3g}"

    lifs = [module for module in model.modules() if isinstance(module, LIF)]
    margin = 2.0 ** -16
    shifted = []
    for threshold in (1 - margin, 1 + margin):
        for lif in lifs:
            lif.v_threshold = threshold
        shifted.append(_all_spikes(model, images)[0])
    near_threshold = int((shifted[0] != shifted[1]).sum())
    flips = int((kernel_spikes != baseline).sum())
    print(f"SNASNet: {len(errors)} kernel calls, max relative error {max(errors):.3g}; "
          f"{flips} of {baseline.numel()} neuron-steps flipped, {near_threshold} within "
          f"{margin:.2g} of the threshold")
    assert flips <= near_threshold <= 1e-3 * baseline.numel(), (flips, near_threshold)
    if flips == 0:
        assert_close(kernel_logits, baseline_logits, atol=1e-5, rtol=1e-5, what="logits")


def test_benchmark_smoke():
    script = BENCHMARKS / "spike_conv.py"
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "| layer" in done.stdout and "recorded in" not in done.stdout, done.stdout
