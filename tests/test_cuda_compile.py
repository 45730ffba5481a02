"""The Triton kernels compiled for CUDA (Ampere sm_80, Hopper sm_90) without a GPU: every launch
the package makes compiles, and the instructions that decide exactness are the right ones.

The interpreter runs the kernels with numpy, which divides exactly and never builds PTX, so
these properties are checked on the compiled code itself (tests/cuda_compile.py)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="the Triton kernels need the triton package (Linux)")
pytestmark = pytest.mark.slow  # the module's compilation (about a minute) starts first

ARCHITECTURES = (80, 90)
APPROXIMATE_DIVISION = ("div.full.f32", "div.approx.f32", "rcp.approx")


@pytest.fixture(scope="module")
def launches():
    environment = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    script = Path(__file__).with_name("cuda_compile.py")
    result = subprocess.run([sys.executable, str(script), *map(str, ARCHITECTURES)],
                            capture_output=True, text=True, env=environment, timeout=600)
    assert result.returncode == 0, f"cuda_compile.py failed:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout)["launches"]


def _of(launches, kernel, *settings):
    found = [entry for entry in launches.values()
             if entry["kernel"] == kernel and all(setting in entry["launch"] for setting in settings)]
    assert found, f"no launch of {kernel} with {settings} was recorded"
    return found


def test_every_launch_compiles(launches):
    failed = {key: entry["error"] for key, entry in launches.items() if "error" in entry}
    assert not failed, f"{len(failed)} of {len(launches)} launches fail to compile: {failed}"
    kernels = {entry["kernel"] for entry in launches.values()}
    assert kernels == {"_lif_fwd_kernel", "_lif_bwd_kernel", "_spike_gram_kernel",
                       "_hamming_epilogue_kernel", "_spike_conv_kernel"}
    assert {entry["architecture"] for entry in launches.values()} == set(ARCHITECTURES)


def test_neuron_charges_as_torch_does_on_cuda(launches):
    """The membrane decides the spikes, so it must round as torch's CUDA kernels round it:
    x * fp32(1 / tau), the reciprocal an IEEE division (div.rn), every operation rounded on its
    own (no fused multiply-add). Triton's "/" would compile to div.full.f32 (up to 2 ulp off).
    The backward's recomputation of the membrane must round like the forward."""
    for entry in _of(launches, "_lif_fwd_kernel") + _of(launches, "_lif_bwd_kernel",
                                                        "RECOMPUTE=True"):
        assert "RECIPROCAL=True" in entry["launch"], entry["launch"]
        instructions = entry["instructions"]
        assert "div.rn.f32" in instructions, entry
        assert not [i for i in instructions if i.startswith("fma")], entry
        if entry["kernel"] == "_lif_fwd_kernel":
            approximate = [i for i in instructions if i.startswith(APPROXIMATE_DIVISION)]
            assert not approximate, f"{entry['launch']} divides approximately: {approximate}"


def test_gram_matrix_uses_integer_tensor_cores(launches):
    """x x^T of the spike rows is exact: int8 products accumulated in int32 (mma on Ampere,
    mma or wgmma on Hopper), never a floating-point product."""
    for entry in _of(launches, "_spike_gram_kernel"):
        products = [i for i in entry["instructions"] if "mma" in i and "." in i]
        integer = [i for i in products if (".s32" in i and ".s8" in i) or i.startswith("wgmma.mma")]
        assert integer, f"{entry['launch']} on sm_{entry['architecture']}: {products}"
        assert not [i for i in products if "f32" in i or "f16" in i or "bf16" in i], entry
    hopper_64 = _of(launches, "_spike_gram_kernel", "BLOCK_B=64")
    assert any("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8" in entry["instructions"]
               for entry in hopper_64 if entry["architecture"] == 90)


def test_spike_conv_multiplies_bfloat16_into_float32_on_tensor_cores(launches):
    """The spike convolution's products are bfloat16 x bfloat16 with float32 accumulation:
    mma.sync m16n8k16 on Ampere, wgmma on Hopper, for every spike dtype and channel block;
    no other MMA kind (tf32, f16, an f16 or bf16 accumulator) anywhere."""
    for entry in _of(launches, "_spike_conv_kernel", "UPCAST=False"):
        products = [i for i in entry["instructions"] if i.startswith(("mma.", "wgmma.mma"))]
        if entry["architecture"] == 80:
            expected = ["mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"]
        else:
            expected = [i for i in products if re.fullmatch(
                r"wgmma\.mma_async\.sync\.aligned\.m64n(16|32|64)k16\.f32\.bf16\.bf16", i)]
        assert products and products == expected, f"{entry['launch']}: {products}"
    spike_dtypes = {entry["launch"].split("[")[1].split(",")[0]
                    for entry in _of(launches, "_spike_conv_kernel")}
    assert spike_dtypes == {"*fp32", "*bf16", "*u8"}, spike_dtypes


def test_kernel_epilogue_rounds_as_the_authors(launches):
    """N - 0.5 / (m N + 1e-3) H in the authors' float32 operations and order: IEEE division and
    no fused multiply-add (the launch turns fp fusion off)."""
    for entry in _of(launches, "_hamming_epilogue_kernel", "EPILOGUE=0"):
        instructions = entry["instructions"]
        assert "div.rn.f32" in instructions, entry
        contracted = [i for i in instructions if i.startswith(("fma", *APPROXIMATE_DIVISION))]
        assert not contracted, f"{entry['launch']}: {contracted}"


def test_neuron_backward_offsets_do_not_wrap_at_2_to_the_31(launches):
    """The backward starts at the last step, (T - 1) N elements into each [T, N] tensor: as a
    32-bit product (mul.lo.s32) it wrapped beyond 2^31 elements, e.g. 20 steps of 134M neurons
    (TinyImageNet at width 128, batch 256: 10.7 GB in float32), and the kernel read and wrote
    at the wrong addresses."""
    for entry in _of(launches, "_lif_bwd_kernel"):
        assert "mul.lo.s32" not in entry["instructions"], entry
