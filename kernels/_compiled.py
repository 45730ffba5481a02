"""torch.compile for snnzoo's CPU paths (the LIF's torch kernels, the cells' average pool),
eager where compiling is switched off (SNNZOO_COMPILE_CPU=0) or has failed once."""

from __future__ import annotations

import functools
import os
import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

_compile_failure: Optional[str] = None


def compiling_enabled() -> bool:
    return _compile_failure is None and os.environ.get("SNNZOO_COMPILE_CPU", "1") != "0"


@functools.lru_cache(maxsize=None)
def _compiled(function):
    return torch.compile(function, dynamic=True)


def run_compiled(function, *args):
    """function(*args), compiled with torch.compile; eager where compiling is off or has failed.
    An error that the eager call raises too is the call's own (a tensor on another device, out
    of memory): it is raised as eager raises it, and compiling stays on."""
    global _compile_failure
    # torch.jit.trace records eager ops; dynamo refuses to run inside it
    if torch.jit.is_tracing() or not compiling_enabled():
        return function(*args)
    try:
        # Float arguments (the LIF's tau, v_threshold, v_reset, alpha) become constants of
        # the graph, one graph per value: left symbolic, inductor specialises v_reset late
        # and its FX graph cache hands the graph of one value to calls with another
        # (torch 2.14).
        with torch._dynamo.config.patch(recompile_limit=64, specialize_float=True):
            return _compiled(function)(*args)
    except Exception as error:  # no C++ compiler, an unsupported torch build, ...
        failure = f"{type(error).__name__}: {error}"
    result = function(*args)
    _compile_failure = failure
    warnings.warn(f"snnzoo: compiling a CPU path ({function.__name__}) failed ({failure}); "
                  f"running snnzoo's CPU paths eagerly from now on. Set SNNZOO_COMPILE_CPU=0 "
                  f"to skip the attempt.", RuntimeWarning, stacklevel=2)
    return result


@functools.lru_cache(maxsize=None)
def _avg_pool2d_of(kernel_size, stride, padding, ceil_mode: bool, count_include_pad: bool,
                   divisor_override):
    """One function per pooling configuration: its sizes are constants of the compiled graph
    (passed as arguments, dynamic=True would make them symbolic)."""
    def avg_pool2d(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override)
    return avg_pool2d


def avg_pool2d(x: Tensor, kernel_size, stride, padding, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """F.avg_pool2d, on float32 CPU tensors through torch.compile: inductor's pooling loop
    gives the same floats as ATen's, forward and backward (it sums the window in the same
    order and divides by the same divisor; tests/test_models.py checks it), and runs the
    cells' 3x3 pool faster than ATen's on the CPU, in NCHW most (docs/benchmarks.md).
    Elsewhere, and inside a compiled or traced model, it is F.avg_pool2d itself
    (run_compiled runs it eagerly under tracing or with compiling off)."""
    pool = _avg_pool2d_of(_hashable(kernel_size), _hashable(stride), _hashable(padding),
                          ceil_mode, count_include_pad, divisor_override)
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.compiler.is_compiling():
        return pool(x)
    return run_compiled(pool, x)


def _hashable(size):
    return tuple(size) if isinstance(size, list) else size
