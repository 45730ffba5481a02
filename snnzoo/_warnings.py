"""Warnings that point at the user's line, however deep in snnzoo and timm they are raised."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path


def _package_dirs() -> tuple[str, ...]:
    import timm
    return tuple(str(Path(module.__file__).parent) + os.sep
                 for module in (timm, sys.modules["snnzoo"]))


def warn_at_caller(message: str, category: type[Warning] = UserWarning) -> None:
    """warnings.warn(message) attributed to the first frame outside snnzoo and timm: the
    user's create_model or parse_genotype call, whichever way it got here."""
    packages = _package_dirs()
    frame, level = sys._getframe(1), 2  # stacklevel 1 is this function, 2 its caller
    while frame is not None and frame.f_code.co_filename.startswith(packages):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
