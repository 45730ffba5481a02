"""The arithmetic precision a model computes in:

- "fp32", the default, exact to the authors' network;
- "bf16", the fast mode: convolutions and linear layers in bfloat16 under torch.autocast, with
  float32 accumulation; BatchNorm sees their bfloat16 outputs; the neurons keep their
  membrane in float32; logits come back in float32;
- "bf16x3", float32 fidelity on GPU tensor cores: in inference every convolution whose input
  is spikes runs as three bfloat16 products of the float32 weight's limbs
  (snnzoo.kernels.spike_conv), equal to float32 up to summation order; the rest is float32.

A spike is exactly 0 or 1 in bfloat16, so what bf16 rounds is the weights (8 significant
bits) and each layer's output; its fidelity is measured in docs/precision.md. The search's
scorer counts spikes with its own exact integer and float32 arithmetic in every precision.

    model.set_precision("bf16")          # or: with torch.autocast("cpu", torch.bfloat16)
    python -m snnzoo.validate snasnet_fmnist --pretrained --precision bf16
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from pathlib import Path
from typing import ContextManager, Iterator, Optional

import torch
from torch import nn

from snnzoo._warnings import warn_at_caller

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "check_precision", "computing_in",
           "precision_context", "native_bf16", "add_precision_option"]

PRECISIONS = ("fp32", "bf16", "bf16x3")
DEFAULT_PRECISION = "fp32"
# The CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic: x86's AVX512-bf16 and
# AMX, Arm's BF16 extension. Without one, torch emulates bf16 with float32 and conversions.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def check_precision(precision: str) -> str:
    """precision if it is one snnzoo knows, else a ValueError naming the valid ones."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is unknown; choose one of {list(PRECISIONS)} "
                         f"(fp32 is exact to the authors' network, bf16 the fast mode, bf16x3 "
                         f"float32 fidelity on GPU tensor cores)")
    return precision


def _cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> Optional[set]:
    """The CPU's feature flags, or None where the system does not list them."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags or None


@functools.lru_cache(maxsize=None)
def native_bf16(device_type: str = "cpu") -> Optional[bool]:
    """Whether the device computes bfloat16 natively: True, False, or None when unknown (a CPU
    whose flags the system does not list). CUDA GPUs from Ampere on do."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device_type != "cpu":
        return None
    flags = _cpu_flags()
    return None if flags is None else any(flag in flags for flag in NATIVE_BF16_FLAGS)


_warned: set = set()  # (precision, device type) pairs warned about once


def _warn_if_emulated(device_type: str) -> None:
    if ("bf16", device_type) in _warned or native_bf16(device_type) is not False:
        return
    _warned.add(("bf16", device_type))
    what = ("this CPU has no native bfloat16 arithmetic (no avx512_bf16, amx_bf16 or bf16 flag)"
            if device_type == "cpu" else f"this {device_type} device has no native bfloat16")
    warn_at_caller(f"precision 'bf16': {what}, so torch emulates it and it will be slower than "
                   f"fp32 here; use precision 'fp32' on this machine", RuntimeWarning)


def _warn_if_off_gpu(device_type: str) -> None:
    if device_type == "cuda" or ("bf16x3", device_type) in _warned:
        return
    _warned.add(("bf16x3", device_type))
    warn_at_caller(f"precision 'bf16x3' is for CUDA GPUs (three bfloat16 tensor-core products "
                   f"per spike convolution); on {device_type} it runs the reference, three "
                   f"float32 convolutions each, slower than fp32 for the same result: use "
                   f"precision 'fp32' here", RuntimeWarning)


def precision_context(precision: str, device: torch.device | str) -> ContextManager:
    """What a forward pass runs under for `precision` on `device`: nothing for fp32,
    torch.autocast to bfloat16 for bf16 (warning once per device type where bfloat16 is
    emulated)."""
    check_precision(precision)
    device_type = torch.device(device).type
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16x3":  # the model's spike convolutions do it (SNASNet.set_precision)
        _warn_if_off_gpu(device_type)
        return contextlib.nullcontext()
    _warn_if_emulated(device_type)
    return torch.autocast(device_type, dtype=torch.bfloat16)


@contextlib.contextmanager
def computing_in(model: nn.Module, precision: Optional[str],
                 device: torch.device | str) -> Iterator[None]:
    """The model computing in precision (None: as it is set): an snnzoo model by its own
    set_precision, put back afterwards; another model under precision_context."""
    if precision is None:
        yield
    elif hasattr(model, "set_precision"):
        previous = model.precision
        model.set_precision(precision)
        try:
            yield
        finally:
            model.set_precision(previous)
    elif precision == "bf16x3":
        raise ValueError(f"precision 'bf16x3' needs an snnzoo model (its set_precision marks "
                         f"the convolutions of spikes); {type(model).__name__} has none: use "
                         f"'fp32' or 'bf16'")
    else:
        with precision_context(precision, device):
            yield


def _precision_choice(text: str) -> str:
    try:
        return check_precision(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _DeprecatedAmp(argparse.Action):
    """--amp (and --no-amp): the former switch, read as --precision bf16 (fp32) with a note."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        precision = "fp32" if option_string.startswith("--no-") else "bf16"
        print(f"note: {option_string} is deprecated and will be removed in the next release; "
              f"use --precision {precision}", file=sys.stderr)
        namespace.precision = precision


def add_precision_option(parser: argparse.ArgumentParser, deprecated_amp: tuple = ()) -> None:
    """--precision {fp32,bf16,bf16x3} (default fp32), and the tool's former switches, deprecated:
    deprecated_amp names them, e.g. ("--amp", "--no-amp"), read as bf16 and fp32."""
    parser.add_argument("--precision", type=_precision_choice, default=DEFAULT_PRECISION,
                        metavar="{" + ",".join(PRECISIONS) + "}",
                        help="arithmetic of convolutions and linear layers: fp32 (default, "
                             "exact to the authors' network), bf16 (faster on CPUs with AMX "
                             "or AVX512-bf16 and on GPUs; fidelity in docs/precision.md) or "
                             "bf16x3 (float32 fidelity from GPU tensor cores, inference)")
    if deprecated_amp:
        parser.add_argument(*deprecated_amp, action=_DeprecatedAmp, dest="precision",
                            default=argparse.SUPPRESS, help="deprecated: --precision bf16")
