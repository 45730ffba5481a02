"""Host memory settings for snnzoo's long-running commands (search, train, validate).

glibc's malloc serves blocks of 32 MiB and more (a CPU network's [T, B, C, H, W] activations,
for one) with fresh mmap()s and unmaps them when freed, so the next forward pass faults every
page in again. On this project's CPU adding two 80 MiB tensors took 47 ms into a new tensor
and 9 ms into an existing one, and 10 ms into a new one after keep_freed_memory()
(benchmarks/page_faults.py, recorded). keep_freed_memory() tells malloc to
serve every block from its heap and to keep up to 1 GiB of freed memory there, as allocators
such as jemalloc or tcmalloc do, which PyTorch's CPU performance guide suggests preloading. The
process then holds on to its peak memory until it exits.

It changes the whole process, so the package never calls it on import: the commands do, and
so can a script (``snnzoo.memory.keep_freed_memory()``). SNNZOO_KEEP_FREED_MEMORY=0 turns it
off. It does nothing where malloc is not glibc's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["ENV", "keep_freed_memory"]

ENV = "SNNZOO_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters, glibc's malloc.h
_KEPT = 1 << 30  # bytes of freed memory kept at the top of the heap


def keep_freed_memory() -> bool:
    """Make malloc reuse freed memory instead of returning it to the system (see the module
    docstring). True when the setting took effect, False where it is turned off by
    SNNZOO_KEEP_FREED_MEMORY=0 or malloc is not glibc's."""
    if os.environ.get(ENV, "1").strip() == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  glibc only: musl and others lack it
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEPT))
