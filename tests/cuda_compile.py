"""Compile every Triton kernel launch of snnzoo for CUDA targets, on a machine without a GPU.

The interpreter (TRITON_INTERPRET=1) checks what the kernels compute, but it runs them with
numpy: it never compiles them, and it divides exactly where the GPU may not. This script runs
the real launchers on CPU tensors with each kernel replaced by a recorder (and the launchers'
one device-dependent choice set as for CUDA), specialises each recorded launch with Triton's
own launcher code for the target (pointer dtypes and alignment, integers equal to 1,
constexprs, launch options), compiles each distinct one with Triton's compiler and prints, as
JSON, a summary of its PTX (the instructions that decide exactness).

    python tests/cuda_compile.py 80 90      # needs triton with its bundled ptxas; no GPU

tests/test_cuda_compile.py runs it in a subprocess (TRITON_INTERPRET must be unset before
triton is imported, and the test session sets it).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys

if os.environ.get("TRITON_INTERPRET") == "1":
    sys.exit("tests/cuda_compile.py compiles kernels: run it with TRITON_INTERPRET unset")

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource, make_backend  # noqa: E402
from triton.runtime.jit import create_function_from_signature  # noqa: E402

from snnzoo.kernels import (LIFParams, HammingKernelScorer, lif_multistep,  # noqa: E402
                            lif_step, pairwise_hamming)
from snnzoo.kernels.lif import triton_kernels as lif_kernels  # noqa: E402
from snnzoo.kernels.spike_conv import spike_conv2d  # noqa: E402
from snnzoo.kernels.spike_conv import triton_kernels as conv_kernels  # noqa: E402
from snnzoo.kernels.spike_kernel import triton_kernels as spike_kernels  # noqa: E402

KERNELS = {
    lif_kernels: ("_lif_fwd_kernel", "_lif_bwd_kernel"),
    spike_kernels: ("_spike_gram_kernel", "_hamming_epilogue_kernel"),
    conv_kernels: ("_spike_conv_kernel",),
}
INSTRUCTIONS = re.compile(r"\b(?:wgmma|mma|div|rcp|fma|ex2|sqrt|mul)(?:\.[a-z0-9_]+)*")
NEURON_CONFIGS = [LIFParams(v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                            surrogate=surrogate)
                  for v_reset, decay_input, detach_reset, surrogate in itertools.product(
                      (0.0, None), (True, False), (True, False), ("atan", "sigmoid"))]


class _Recorder:
    """Stands in for a JITFunction: kernel[grid](*args, **kwargs) records the launch."""

    def __init__(self, function, launches):
        self.function, self.launches = function, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.launches.append((self.function, args, kwargs))
        return launch


def _exercise():
    """Every kind of launch the package makes: the neuron's forward and backward in every
    configuration (float32) and in half precision, for a step, short and long sequences (over
    MAX_RECOMPUTE_STEPS the forward saves h); the scorer for every spike dtype and tile size;
    the spike convolution for every spike dtype, channel block, epilogue and SNASNet's
    geometries (3x3 stride 1 padding 1, 1x1) and a strided one."""
    for dtype, configs in ((torch.float32, NEURON_CONFIGS), (torch.float16, NEURON_CONFIGS[:1]),
                           (torch.bfloat16, NEURON_CONFIGS[:1])):
        for config in configs:
            for steps in (1, 5, 40):
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
    weight = torch.zeros(128, 128, 3, 3)
    # float32: the model's spikes; bfloat16 and bytes: the narrow loads (float16 and float64
    # load as float32 and bfloat16 do, and are left out to keep the suite's time)
    for dtype in (torch.float32, torch.bfloat16, torch.uint8, torch.bool):
        spike_conv2d(torch.zeros(2, 128, 6, 6, dtype=dtype), weight, padding=1, backend="triton")
    spikes = torch.zeros(2, 128, 6, 6).contiguous(memory_format=torch.channels_last)
    scale, shift = torch.ones(128), torch.zeros(128)
    spike_conv2d(spikes, weight, padding=1, scale=scale, shift=shift, backend="triton")
    spike_conv2d(spikes, weight, torch.zeros(128), padding=1, scale=scale, shift=shift,
                 backend="triton")
    spike_conv2d(spikes, weight[:, :, :1, :1], backend="triton")
    for channels in (8, 20):  # 16- and 32-channel blocks
        spike_conv2d(torch.zeros(2, channels, 6, 6), torch.zeros(channels, channels, 3, 3),
                     padding=1, backend="triton")


def record():
    """[(JITFunction, args, kwargs)] of every launch, as they would be made with CUDA tensors."""
    launches = []
    for module, names in KERNELS.items():
        for name in names:
            setattr(module, name, _Recorder(getattr(module, name), launches))
        module.require_triton = lambda *args: None  # CPU tensors stand in for CUDA ones
    lif_kernels._divides_by_reciprocal = lambda tensor: True  # what CUDA tensors get
    _exercise()
    return launches


def _source(function, args, kwargs, target):
    """(ASTSource, options, a readable key) of one launch, specialised as Triton's launcher
    specialises it for target (pointer alignment, integers equal to 1, constexprs)."""
    backend = make_backend(target)
    binder = create_function_from_signature(function.signature, function.params, backend)
    bound_args, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = function._pack_args(
        backend, kwargs, bound_args, specialization, options)
    named = {function.arg_names[path[0]]: value for path, value in constexprs.items()}
    pointers = ",".join(kind for kind in signature.values() if kind.startswith("*"))
    key = f"{function.__name__}[{pointers}]" + "".join(
        f" {name}={value}" for name, value in sorted(named.items())
        if name in {p.name for p in function.params if p.is_constexpr} or value == 1)
    key += "".join(f" {name}={kwargs[name]}" for name in sorted(kwargs)
                   if name not in function.arg_names)
    return ASTSource(function, signature, constexprs, attrs), options, key


def main(architectures):
    launches = record()
    report = {}
    for architecture in architectures:
        target = GPUTarget("cuda", architecture, 32)
        compiled_keys = set()
        for function, args, kwargs in launches:
            source, options, key = _source(function, args, kwargs, target)
            if key in compiled_keys:
                continue
            compiled_keys.add(key)
            entry = dict(kernel=function.__name__, launch=key, architecture=architecture)
            try:
                compiled = triton.compile(source, target=target, options=options.__dict__)
            except Exception as error:  # reported, with the launch that failed
                entry["error"] = f"{type(error).__name__}: {error}"
            else:
                entry["instructions"] = sorted(set(INSTRUCTIONS.findall(compiled.asm["ptx"])))
                entry["cubin_bytes"] = len(compiled.asm["cubin"])
            report[f"sm_{architecture} {key}"] = entry
    json.dump(dict(triton=triton.__version__, launches=report), sys.stdout, indent=1)


if __name__ == "__main__":
    main([int(architecture) for architecture in sys.argv[1:]] or [80, 90])
