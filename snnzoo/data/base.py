"""What every data set shares: its description, the missing-data error, the transform, the
in-memory image data set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

__all__ = ["DEFAULT_DATA_DIR", "DatasetInfo", "DatasetNotFoundError", "ImageTensorDataset",
           "build_transform"]

DEFAULT_DATA_DIR = Path("~/.cache/snnzoo/data").expanduser()
"""Where ``download=True`` puts data sets when no ``data_dir`` is given, and where they are
looked for afterwards."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and its training loop need to know about a data set.

    input_size is (channels, height, width) after loading (and resizing, for image folders);
    mean and std are the per-channel normalisation applied to pixel values scaled to [0, 1].
    Augmentation is a random crop back to the input size after ``crop_padding`` pixels of
    zero (black) padding on each side, then a left-right flip if ``horizontal_flip``.
    """

    name: str
    title: str
    num_classes: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int
    horizontal_flip: bool
    description: str = ""


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where they were looked for.

    The message names the data set, every directory searched, and every way to provide it.
    """

    def __init__(self, title: str, searched: Sequence[Path], ways: Sequence[str],
                 problem: str = "not found"):
        self.title = title
        self.searched = [Path(directory) for directory in searched]
        self.ways = list(ways)
        lines = [f"{title}: {problem}. Searched:"]
        lines += [f"  {directory}" for directory in self.searched]
        lines.append("Provide it in one of these ways:")
        lines += [f"  - {way}" for way in self.ways]
        super().__init__("\n".join(lines))


SAMPLE_WAY = ("use the embedded sample instead: --dataset fashion-mnist-sample "
              "(load_dataset('fashion-mnist-sample')), 2,000 Fashion-MNIST test images shipped "
              "with snnzoo")


def build_transform(info: DatasetInfo, augment: bool, resize: bool = False) -> v2.Compose:
    """uint8 image ([C, H, W] tensor or PIL image) -> normalised float32 [C, H, W] tensor.

    The crop pads with zeros before normalisation, as torchvision's recipe for CIFAR does.
    """
    size = list(info.input_size[1:])
    steps: list[Callable] = [v2.ToImage()]
    if resize:
        steps.append(v2.Resize(size, antialias=True))
    if augment:
        steps.append(v2.RandomCrop(size, padding=info.crop_padding))
        if info.horizontal_flip:
            steps.append(v2.RandomHorizontalFlip())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(info.mean, info.std),
              v2.ToPureTensor()]
    return v2.Compose(steps)


class ImageTensorDataset(Dataset):
    """Images held in memory as a uint8 [N, C, H, W] tensor with int64 labels [N].

    Yields ``(transform(images[i]), int(labels[i]))``.
    """

    def __init__(self, images: Tensor, labels: Tensor, classes: Sequence[str],
                 transform: Optional[Callable] = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W]; got {images.dtype} "
                             f"{tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
