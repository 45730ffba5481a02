"""The data set table, ``load_dataset`` and ``first_batch``."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .base import DatasetInfo, build_transform
from .cifar import load_cifar
from .fashion_mnist import load_fashion_mnist, load_fashion_mnist_sample
from .image_folder import (describe_image_folder, find_tiny_imagenet, load_image_folder,
                           tiny_imagenet_not_found)

__all__ = ["DATASETS", "DEFAULT_DATASET", "SPLITS", "dataset_info", "first_batch",
           "load_dataset"]

PathLike = Union[str, Path]

_FASHION_MNIST_NORMALISATION = dict(mean=(0.2860,), std=(0.3530,))
_FASHION_MNIST_HUB_ID = "zalando-datasets/fashion_mnist"
_IMAGENET_NORMALISATION = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))

# Means and standard deviations per channel, pixels in [0, 1]: for CIFAR-10, CIFAR-100 and Tiny
# ImageNet the authors' values (their utils.py, data_transforms; ImageNet's for Tiny ImageNet),
# so that their converted checkpoints see inputs normalised as in their training; for
# Fashion-MNIST its training set's statistics. The sample is normalised like the full
# Fashion-MNIST, so a model trained on one can be evaluated on the other. The models' cfgs
# (snnzoo.models.snasnet) take theirs from this table.
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in [
    DatasetInfo("fashion-mnist-sample", "Fashion-MNIST sample", 10, (1, 28, 28),
                **_FASHION_MNIST_NORMALISATION, crop_padding=2, horizontal_flip=False,
                description="2,000 images shipped with snnzoo, all from the Fashion-MNIST "
                            "*test* set: train = first 160 per class, test = last 40",
                hub_id=_FASHION_MNIST_HUB_ID),
    DatasetInfo("fashion-mnist", "Fashion-MNIST", 10, (1, 28, 28),
                **_FASHION_MNIST_NORMALISATION, crop_padding=2, horizontal_flip=False,
                description="60,000 train / 10,000 test greyscale 28 x 28 images",
                hub_id=_FASHION_MNIST_HUB_ID),
    DatasetInfo("cifar10", "CIFAR-10", 10, (3, 32, 32),
                mean=(0.4913, 0.4821, 0.4465), std=(0.2470, 0.2434, 0.2615),
                crop_padding=4, horizontal_flip=True,
                description="50,000 train / 10,000 test RGB 32 x 32 images",
                hub_id="uoft-cs/cifar10"),
    DatasetInfo("cifar100", "CIFAR-100", 100, (3, 32, 32),
                mean=(0.5071, 0.4867, 0.4408), std=(0.2673, 0.2564, 0.2762),
                crop_padding=4, horizontal_flip=True,
                description="50,000 train / 10,000 test RGB 32 x 32 images, fine labels",
                hub_id="uoft-cs/cifar100"),
    DatasetInfo("tinyimagenet", "Tiny ImageNet", 200, (3, 64, 64),
                **_IMAGENET_NORMALISATION,
                crop_padding=8, horizontal_flip=True,
                description="100,000 train / 10,000 val RGB 64 x 64 images; val is the test split",
                hub_id="zh-plus/tiny-imagenet"),
]}
"""Named data sets. Any other name that is a path is read as an image folder."""

DEFAULT_DATASET = "fashion-mnist-sample"
SPLITS = ("train", "test")


def names_a_folder(name: str) -> bool:
    """Whether a --dataset value names an image folder (a path) rather than a data set."""
    return "/" in name or "\\" in name or name.startswith((".", "~")) or Path(name).is_dir()


def dataset_info(name: PathLike, image_size: Optional[int] = None) -> DatasetInfo:
    """Classes, input size and normalisation of a named data set or an image-folder path.

    image_size resizes images to image_size x image_size. An image folder's default size is
    that of its first training image; its crop padding is an eighth of the smaller side.
    """
    name = os.fspath(name)
    if name in DATASETS:
        info = DATASETS[name]
        if image_size is not None:
            info = replace(info, input_size=(info.input_size[0], image_size, image_size))
        return info
    if not names_a_folder(name):
        raise ValueError(f"unknown data set {name!r}; choose one of {list(DATASETS)} or give "
                         "the path of an image folder")
    root = Path(name).expanduser().absolute()
    classes, (height, width) = describe_image_folder(root, image_size)
    return DatasetInfo(str(root), f"Image folder {root}", len(classes), (3, height, width),
                       **_IMAGENET_NORMALISATION, crop_padding=max(1, min(height, width) // 8),
                       horizontal_flip=True, description=f"class folders under {root}")


def _load_sample(name, split, data_dir, download, transform):
    return load_fashion_mnist_sample(split, transform)


def _load_fashion_mnist(name, split, data_dir, download, transform):
    return load_fashion_mnist(split, data_dir, download, transform)


def _load_tiny_imagenet(name, split, data_dir, download, transform):
    root = find_tiny_imagenet(data_dir)
    if root is None:
        raise tiny_imagenet_not_found(data_dir)
    return load_image_folder(root, split, transform)


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "fashion-mnist-sample": _load_sample,
    "fashion-mnist": _load_fashion_mnist,
    "cifar10": load_cifar,
    "cifar100": load_cifar,
    "tinyimagenet": _load_tiny_imagenet,
}


def load_dataset(name: PathLike = DEFAULT_DATASET, split: str = "train",
                 data_dir: Optional[PathLike] = None, download: bool = False,
                 augment: bool = False, image_size: Optional[int] = None) -> Dataset:
    """A split of a data set, yielding (normalised float32 image [C, H, W], int label).

    name: a key of DATASETS ("fashion-mnist-sample", the default, needs no files) or the path
        of an image folder (see snnzoo.data.image_folder).
    split: "train" or "test" (Tiny ImageNet's and image folders' test split is val/).
    data_dir: where to look for the files instead of the default places; see each data set's
        module for the layouts it reads.
    download: fetch Fashion-MNIST or CIFAR with torchvision when not found (into data_dir,
        else ~/.cache/snnzoo/data). Without it nothing is ever downloaded.
    augment: random crop after zero padding, plus left-right flips for the colour sets
        (padding and flip per DatasetInfo: 4 + flip for CIFAR, 2 and no flip for Fashion-MNIST).
    image_size: resize to image_size x image_size (image folders are always resized, by
        default to their first image's size).

    Raises DatasetNotFoundError (a FileNotFoundError) when the files are missing.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}; choose one of {SPLITS}")
    name = os.fspath(name)
    info = dataset_info(name, image_size)
    data_dir = Path(data_dir).expanduser() if data_dir is not None else None
    if name not in DATASETS:
        return load_image_folder(Path(info.name), split, build_transform(info, augment, True))
    resize = image_size is not None or name == "tinyimagenet"
    transform = build_transform(info, augment, resize)
    return _LOADERS[name](name, split, data_dir, download, transform)


def first_batch(dataset: Dataset, batch_size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A fixed batch: batch_size distinct examples drawn at random with the seed, stacked.

    Returns (images float32 [batch_size, C, H, W], labels int64 [batch_size]). The same
    dataset, batch_size and seed give the same batch, augmentation included (its random
    draws are seeded too); the global random state is left as it was.
    """
    if not 0 < batch_size <= len(dataset):
        raise ValueError(f"batch_size={batch_size} but the data set has {len(dataset)} "
                         "examples; ask for between 1 and that many")
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(len(dataset), generator=generator)[:batch_size].tolist()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        examples = [dataset[index] for index in indices]
    images = torch.stack([image for image, _ in examples])
    labels = torch.tensor([label for _, label in examples], dtype=torch.int64)
    return images, labels
