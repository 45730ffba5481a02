"""CIFAR-10 and CIFAR-100, read from CIFAR's own python-pickle layout.

  DATA_DIR/cifar-10-batches-py/{data_batch_1 .. data_batch_5, test_batch, batches.meta}
  DATA_DIR/cifar-100-python/{train, test, meta}

Each batch is a pickled dict whose b"data" is uint8 [N, 3072], one image per row: 1024 red
values, then 1024 green, then 1024 blue, each plane row-major 32 x 32; labels are b"labels"
(CIFAR-10) or b"fine_labels" (CIFAR-100). The files are read here rather than through
torchvision's classes, which also check the MD5 sums of the official archives; torchvision
is used only for ``download=True``. Like any pickle, these files can run code when loaded:
only point ``data_dir`` at copies you trust.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from .base import DEFAULT_DATA_DIR, SAMPLE_WAY, DatasetNotFoundError, ImageTensorDataset

__all__ = ["CIFAR_LAYOUTS", "CifarLayout", "load_cifar"]


@dataclass(frozen=True)
class CifarLayout:
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: bytes
    names_key: bytes
    torchvision_class: str


CIFAR_LAYOUTS = {
    "cifar10": CifarLayout("CIFAR-10", "cifar-10-batches-py",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
                           "batches.meta", b"labels", b"label_names", "CIFAR10"),
    "cifar100": CifarLayout("CIFAR-100", "cifar-100-python", ("train",), ("test",), "meta",
                            b"fine_labels", b"fine_label_names", "CIFAR100"),
}


_REDOWNLOAD = ("delete it and run again with --download (download=True), or extract the "
               "official archive again")


def _unpickle(path: Path, keys: tuple[bytes, ...]) -> dict:
    """The pickled dict in path, which must hold keys; ValueError naming the file if not."""
    try:
        with open(path, "rb") as file:
            content = pickle.load(file, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as error:
        raise ValueError(f"{path} cannot be read as a CIFAR batch ({type(error).__name__}: "
                         f"{error}); it may be truncated or corrupt: {_REDOWNLOAD}") from None
    if not isinstance(content, dict) or any(key not in content for key in keys):
        found = sorted(content, key=repr) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"{path} is not a CIFAR batch of the python version: it needs the keys "
                         f"{list(keys)} (bytes, as CIFAR's own files have), found {found}; "
                         f"{_REDOWNLOAD}")
    return content


def _search_dirs(layout: CifarLayout, data_dir: Optional[Path]) -> list[Path]:
    if data_dir is not None:
        return [data_dir / layout.folder, data_dir]
    return [DEFAULT_DATA_DIR / layout.folder]


def _find(layout: CifarLayout, data_dir: Optional[Path]) -> Optional[Path]:
    needed = layout.train_files + layout.test_files + (layout.meta_file,)
    for directory in _search_dirs(layout, data_dir):
        if all((directory / name).is_file() for name in needed):
            return directory
    return None


def _not_found(layout: CifarLayout, data_dir: Optional[Path]) -> DatasetNotFoundError:
    download_root = data_dir if data_dir is not None else DEFAULT_DATA_DIR
    files = ", ".join(layout.train_files + layout.test_files + (layout.meta_file,))
    return DatasetNotFoundError(layout.title, _search_dirs(layout, data_dir), [
        f"--data-dir DIR (data_dir=DIR), where DIR/{layout.folder}/ holds {files} "
        f"(the python version of {layout.title}, extracted)",
        f"--download (download=True): torchvision downloads and extracts it into "
        f"{download_root / layout.folder}",
        SAMPLE_WAY,
    ])


def load_cifar(name: str, split: str, data_dir: Optional[Path] = None, download: bool = False,
               transform: Optional[Callable] = None) -> ImageTensorDataset:
    """CIFAR-10 or CIFAR-100 (name "cifar10" / "cifar100"): 50,000 train or 10,000 test
    images, uint8 [3, 32, 32] in RGB order before the transform."""
    layout = CIFAR_LAYOUTS[name]
    directory = _find(layout, data_dir)
    if directory is None and download:
        import torchvision.datasets

        root = data_dir if data_dir is not None else DEFAULT_DATA_DIR
        getattr(torchvision.datasets, layout.torchvision_class)(str(root), download=True)
        directory = _find(layout, root)
    if directory is None:
        raise _not_found(layout, data_dir)

    meta = _unpickle(directory / layout.meta_file, (layout.names_key,))
    classes = [name.decode() for name in meta[layout.names_key]]
    images, labels = [], []
    for file_name in layout.train_files if split == "train" else layout.test_files:
        path = directory / file_name
        batch = _unpickle(path, (b"data", layout.label_key))
        data = np.asarray(batch[b"data"])
        if data.dtype != np.uint8 and data.size and (data.dtype.kind not in "iu" or data.min() < 0
                                                     or data.max() > 255):
            raise ValueError(f"{path}: b'data' holds {data.dtype} values from {data.min()} to "
                             f"{data.max()}, not pixels 0-255 as CIFAR stores them; "
                             f"{_REDOWNLOAD}")
        data = data.astype(np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{path}: b'data' has shape {data.shape}; expected [N, 3072]; "
                             f"{_REDOWNLOAD}")
        batch_labels = np.asarray(batch[layout.label_key], dtype=np.int64)
        if batch_labels.shape != data.shape[:1]:
            raise ValueError(f"{path}: {data.shape[0]} images but {layout.label_key!r} has shape "
                             f"{batch_labels.shape}; {_REDOWNLOAD}")
        outside = batch_labels[(batch_labels < 0) | (batch_labels >= len(classes))]
        if outside.size:
            raise ValueError(f"{path}: {outside.size} labels outside 0-{len(classes) - 1} (the "
                             f"{len(classes)} classes of {layout.meta_file}), e.g. "
                             f"{int(outside[0])}; {_REDOWNLOAD}")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(batch_labels)
    return ImageTensorDataset(torch.from_numpy(np.concatenate(images)),
                              torch.from_numpy(np.concatenate(labels)), classes, transform)
