"""Compile every Triton kernel launch of snnzoo for CUDA targets, on a machine without a GPU.

The interpreter (TRITON_INTERPRET=1) checks what the kernels compute, but it runs them with
numpy: it never compiles them, and it divides exactly where the GPU may not. This script runs
the real launchers on CPU tensors with each kernel replaced by a recorder, so that what is
compiled is what the launchers would launch (pointer dtypes, constexprs, launch options), then
compiles each distinct launch with Triton's own compiler for the given architectures and
prints, as JSON, a summary of the PTX of each (instructions that decide exactness).

    python tests/cuda_compile.py 80 90      # needs triton with its bundled ptxas; no GPU

tests/test_cuda_compile.py runs it in a subprocess (TRITON_INTERPRET must be unset before
triton is imported, and the test session sets it).
"""

from __future__ import annotations

import json
import os
import re
import sys

if os.environ.get("TRITON_INTERPRET") == "1":
    sys.exit("tests/cuda_compile.py compiles kernels: run it with TRITON_INTERPRET unset")

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from snnzoo.kernels import (LIFParams, HammingKernelScorer, lif as lif_module,  # noqa: E402
                            lif_multistep, lif_step, pairwise_hamming, spike_kernel)

KERNELS = {
    lif_module: ("_lif_fwd_kernel", "_lif_bwd_kernel"),
    spike_kernel: ("_spike_gram_kernel", "_hamming_epilogue_kernel"),
}
COMPILE_OPTIONS = ("num_warps", "num_stages", "enable_fp_fusion")
POINTER_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16",
                 torch.float64: "fp64", torch.uint8: "u8", torch.int8: "i8", torch.int32: "i32",
                 torch.int64: "i64"}
INSTRUCTIONS = re.compile(r"\b(?:wgmma|mma|div|rcp|fma|ex2|sqrt)(?:\.[a-z0-9_]+)*")


class _Recorder:
    """Stands in for a JITFunction: kernel[grid](*args, **kwargs) records the launch."""

    def __init__(self, function, launches):
        self.function, self.launches = function, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.function, args, kwargs))
        return launch


def _scalar_type(value) -> str:
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -2**31 <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"cannot type launch argument {value!r}")


def _source(function, args, kwargs):
    """(ASTSource, compile options, a readable key) of one recorded launch."""
    values = dict(zip(function.arg_names, args))
    values.update((name, value) for name, value in kwargs.items() if name not in COMPILE_OPTIONS)
    signature, constexprs = {}, {}
    for name, parameter in zip(function.arg_names, function.params):
        value = values[name]
        if parameter.is_constexpr:
            signature[name], constexprs[name] = "constexpr", value
        elif isinstance(value, torch.Tensor):
            signature[name] = "*" + POINTER_TYPES[value.dtype]
        else:
            signature[name] = _scalar_type(value)
    options = {name: kwargs[name] for name in COMPILE_OPTIONS if name in kwargs}
    pointers = ",".join(kind for kind in signature.values() if kind.startswith("*"))
    key = f"{function.__name__}[{pointers}]" + "".join(
        f" {name}={value}" for name, value in sorted(constexprs.items())) + "".join(
        f" {name}={value}" for name, value in sorted(options.items()))
    return ASTSource(fn=function, signature=signature, constexprs=constexprs), options, key


def _exercise():
    """Every kind of launch the package makes: the neuron's forward and backward in each
    dtype, configuration, sequence length and state; the scorer's kernel and Hamming paths
    for each spike dtype and tile size."""
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for config in (LIFParams(), LIFParams(v_reset=None, decay_input=False, surrogate="sigmoid",
                                              detach_reset=True)):
            for steps in (1, 5, 40):  # 40 > MAX_RECOMPUTE_STEPS: the forward saves h
                x = torch.zeros(steps, 2, 3, dtype=dtype, requires_grad=True)
                lif_multistep(x, config, backend="triton").sum().backward()
            x = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
            spikes, v = lif_step(x, None, config, backend="triton")
            spikes, _ = lif_step(x, v, config, backend="triton")
            spikes.sum().backward()
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.uint8,
                  torch.bool):
        for batch in (8, 20, 100):  # 16-, 32- and 64-row tiles
            spikes = torch.zeros(batch, 4, 5, 5, dtype=dtype)
            HammingKernelScorer("triton").add(spikes)
    pairwise_hamming(torch.zeros(8, 10), backend="triton")


def record():
    launches = []
    for module, names in KERNELS.items():
        for name in names:
            setattr(module, name, _Recorder(getattr(module, name), launches))
        module.require_triton = lambda *args: None  # CPU tensors stand in for CUDA ones
    _exercise()
    return launches


def main(architectures):
    sources = {}
    for function, args, kwargs in record():
        source, options, key = _source(function, args, kwargs)
        sources.setdefault(key, (function.__name__, source, options))
    report = {}
    for key, (name, source, options) in sorted(sources.items()):
        for architecture in architectures:
            entry = dict(kernel=name, launch=key, architecture=architecture)
            try:
                compiled = triton.compile(source, target=GPUTarget("cuda", architecture, 32),
                                          options=options)
            except Exception as error:  # reported, with the launch that failed
                entry["error"] = f"{type(error).__name__}: {error}"
            else:
                ptx = compiled.asm["ptx"]
                entry["instructions"] = sorted(set(INSTRUCTIONS.findall(ptx)))
                entry["cubin_bytes"] = len(compiled.asm["cubin"])
            report[f"sm_{architecture} {key}"] = entry
    json.dump(dict(triton=triton.__version__, launches=report), sys.stdout, indent=1)


if __name__ == "__main__":
    main([int(architecture) for architecture in sys.argv[1:]] or [80, 90])
