"""What the kernel families share: Triton as an optional import, the backend names, and the
checks that say clearly when a backend cannot run."""

from __future__ import annotations

import os

from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton is declared for Linux only
    triton = None
    tl = None

__all__ = ["BACKENDS", "check_backend", "require_triton", "tl", "triton", "triton_available"]

BACKENDS = ("auto", "triton", "torch")


def triton_available() -> bool:
    return triton is not None


def check_backend(backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is unknown; choose one of {list(BACKENDS)}")


def require_triton(tensor: Tensor, family: str):
    """Raise before a launch that cannot run: no triton package, or a CPU tensor outside the
    interpreter (Triton's own error would only say that a pointer cannot be accessed)."""
    if triton is None:
        raise RuntimeError(
            f"the Triton {family} backend needs the 'triton' package (Linux); install it, or "
            f"use backend='torch' or backend='auto'")
    if not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"backend='triton' needs CUDA tensors, got {family} input on {tensor.device}; use "
            f"backend='auto' (torch on the CPU), or set TRITON_INTERPRET=1 before importing "
            f"triton to run the kernel under the interpreter")
