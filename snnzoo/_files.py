"""Writing files so that a reader sees the old content or the new one, never a part of it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Callable


def write_atomically(path, write: Callable[[Path], object]) -> Path:
    """Call write(temporary) for a temporary file beside path (created with the mode of any new
    file), then rename it into place: a reader sees the old file or the new one, never a part
    of it. The temporary file is removed if write fails or is interrupted."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path, text: str) -> Path:
    """Write text (UTF-8) to path atomically (see write_atomically)."""
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomically(path, data, **options) -> Path:
    """Write data as indented JSON and a newline to path atomically; options go to json.dumps
    (allow_nan=False, say)."""
    return write_text_atomically(path, json.dumps(data, indent=2, **options) + "\n")


def give_new_file_mode(path) -> Path:
    """Set path's mode to that of any new file under the process's umask (0644 under the usual
    022), for files that a library creates with a stricter one (safetensors writes 0600)."""
    os.chmod(path, 0o666 & ~_umask())
    return Path(path)


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def visible_entries(folder) -> list[str]:
    """The sorted names in folder, if it is one, that say it is in use: hidden files (.DS_Store,
    .gitkeep) and leftover temporary files (*.tmp) are not counted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir()
                  if not path.name.startswith(".") and not path.name.endswith(".tmp"))
