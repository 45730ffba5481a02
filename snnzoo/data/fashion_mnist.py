"""Fashion-MNIST: the full set from IDX files, and the 2,000-image sample shipped with snnzoo.

The full set is read from the IDX files, gzipped or not, in any of these layouts:
  - Debian's ``dataset-fashion-mnist`` package: /usr/share/datasets/fashion-mnist/*.gz
  - torchvision's: DATA_DIR/FashionMNIST/raw/ (what ``download=True`` creates)
  - the four files straight in DATA_DIR

The sample (``fashion_mnist_sample.npz`` next to this file) holds the first 200 images of
each class, in test-set order, from the official Fashion-MNIST **test** set; see
FASHION_MNIST_LICENSE and scripts/make_fashion_mnist_sample.py. Its own "train" split is the
first 160 of each class and its "test" split the last 40, so a model trained on the sample
is judged on images it has not seen; but none of it is Fashion-MNIST's training set, and
accuracies on it are not comparable with published Fashion-MNIST results.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np
import torch

from .base import DEFAULT_DATA_DIR, SAMPLE_WAY, DatasetNotFoundError, ImageTensorDataset

__all__ = ["CLASSES", "DEBIAN_DIR", "SAMPLE_FILE", "SAMPLE_TRAIN_PER_CLASS", "FashionMNISTSample",
           "find_fashion_mnist", "load_fashion_mnist", "load_fashion_mnist_sample", "read_idx",
           "read_fashion_mnist_sample"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_FILE = Path(__file__).with_name("fashion_mnist_sample.npz")
SAMPLE_TRAIN_PER_CLASS = 160
_FILE_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format; gzipped if the name ends in .gz) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            content = file.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"{path} cannot be decompressed ({type(error).__name__}: {error}); it "
                         f"may be truncated or corrupt: delete it and download it again "
                         f"(--download), or store it uncompressed") from None
    if len(content) < 4 or content[0] != 0 or content[1] != 0 or content[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (header {content[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    ndim = content[3]
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = offset + int(np.prod(shape)) * dtype.itemsize
    if len(content) != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes) but the file "
                         f"has {len(content)} bytes; it may be truncated")
    array = np.frombuffer(content, dtype, offset=offset).reshape(shape)
    return array.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def _idx_file(directory: Path, stem: str) -> Optional[Path]:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _search_dirs(data_dir: Optional[Path]) -> list[Path]:
    if data_dir is not None:
        return [data_dir, data_dir / "FashionMNIST" / "raw", data_dir / "fashion-mnist"]
    return [DEBIAN_DIR, DEFAULT_DATA_DIR / "FashionMNIST" / "raw"]


def find_fashion_mnist(split: str, data_dir: Optional[Path] = None
                       ) -> Optional[tuple[Path, Path]]:
    """(images file, labels file) of a split in the first directory searched that has both."""
    prefix = _FILE_PREFIX[split]
    for directory in _search_dirs(data_dir):
        images = _idx_file(directory, f"{prefix}-images-idx3-ubyte")
        labels = _idx_file(directory, f"{prefix}-labels-idx1-ubyte")
        if images is not None and labels is not None:
            return images, labels
    return None


def _not_found(data_dir: Optional[Path]) -> DatasetNotFoundError:
    download_root = data_dir if data_dir is not None else DEFAULT_DATA_DIR
    return DatasetNotFoundError("Fashion-MNIST", _search_dirs(data_dir), [
        "--data-dir DIR (data_dir=DIR), where DIR holds train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may "
        "end in .gz), directly or in torchvision's DIR/FashionMNIST/raw/",
        f"--download (download=True): torchvision downloads it into "
        f"{download_root / 'FashionMNIST' / 'raw'}",
        f"apt-get install dataset-fashion-mnist (Debian, Ubuntu): installs it into {DEBIAN_DIR}, "
        "which is searched when no data directory is given",
        SAMPLE_WAY,
    ])


def load_fashion_mnist(split: str, data_dir: Optional[Path] = None, download: bool = False,
                       transform: Optional[Callable] = None) -> ImageTensorDataset:
    """The full Fashion-MNIST split: 60,000 train or 10,000 test images, [1, 28, 28]."""
    files = find_fashion_mnist(split, data_dir)
    if files is None and download:
        from torchvision.datasets import FashionMNIST

        root = data_dir if data_dir is not None else DEFAULT_DATA_DIR
        FashionMNIST(str(root), train=split == "train", download=True)
        files = find_fashion_mnist(split, root)
    if files is None:
        raise _not_found(data_dir)
    images, labels = (read_idx(path) for path in files)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise ValueError(f"{files[0]} holds images of shape {images.shape} and {files[1]} "
                         f"labels of shape {labels.shape}; expected [N, 28, 28] and [N]")
    outside = labels[(labels < 0) | (labels >= len(CLASSES))]
    if outside.size:
        raise ValueError(f"{files[1]}: {outside.size} labels outside 0-{len(CLASSES) - 1}, e.g. "
                         f"{int(outside[0])}; delete it and download it again (--download)")
    return ImageTensorDataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels),
                              CLASSES, transform)


class FashionMNISTSample(NamedTuple):
    """The embedded sample as stored: images uint8 [2000, 28, 28], labels uint8 [2000], and
    the index of each image in the Fashion-MNIST test set."""

    images: np.ndarray
    labels: np.ndarray
    test_indices: np.ndarray


def read_fashion_mnist_sample(path: Path = SAMPLE_FILE) -> FashionMNISTSample:
    if not Path(path).is_file():
        raise DatasetNotFoundError("The embedded Fashion-MNIST sample", [Path(path).parent], [
            "reinstall snnzoo (the wheel ships snnzoo/data/fashion_mnist_sample.npz)",
            "regenerate it: python scripts/make_fashion_mnist_sample.py (needs the full "
            "Fashion-MNIST, e.g. apt-get install dataset-fashion-mnist)",
        ], problem=f"{Path(path).name} is missing")
    with np.load(path) as arrays:
        return FashionMNISTSample(arrays["images"], arrays["labels"], arrays["test_indices"])


def load_fashion_mnist_sample(split: str, transform: Optional[Callable] = None
                              ) -> ImageTensorDataset:
    """The sample's "train" split (160 per class, 1,600 images) or "test" split (40 per
    class, 400 images); both are drawn from the Fashion-MNIST test set."""
    sample = read_fashion_mnist_sample()
    labels = sample.labels.astype(np.int64)
    rank_in_class = np.empty_like(labels)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank_in_class[members] = np.arange(members.size)
    keep = rank_in_class < SAMPLE_TRAIN_PER_CLASS
    if split == "test":
        keep = ~keep
    images = torch.from_numpy(sample.images[keep]).unsqueeze(1)
    return ImageTensorDataset(images, torch.from_numpy(labels[keep]), CLASSES, transform)
