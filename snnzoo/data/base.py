"""What every data set shares: its description, the missing-data error, the transform, the
in-memory image data set."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms import v2

__all__ = ["DEFAULT_DATA_DIR", "DatasetInfo", "DatasetNotFoundError", "DeviceBatches",
           "ImageTensorDataset", "build_transform", "draw_crops", "evaluation_batches",
           "exit_on_data_error", "normalise", "tensor_source", "transform_batch"]

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
    hub_id is the data set's id on the Hugging Face Hub, for model cards (None: none).
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
    hub_id: Optional[str] = None


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


@contextlib.contextmanager
def exit_on_data_error():
    """For the command-line tools: a data set that is missing, unknown or unreadable ends the
    process with one ``error:`` line (the message says where it looked and what to do)
    instead of a traceback. Wrap only the calls that find and load data."""
    try:
        yield
    except (ValueError, DatasetNotFoundError) as error:
        raise SystemExit(f"error: {error}") from None


SAMPLE_WAY = ("use the embedded sample instead: --dataset fashion-mnist-sample "
              "(load_dataset('fashion-mnist-sample')), 2,000 Fashion-MNIST test images shipped "
              "with snnzoo")


def build_transform(info: DatasetInfo, augment: bool, resize: bool = False) -> v2.Compose:
    """uint8 image ([C, H, W] tensor or PIL image) -> normalised float32 [C, H, W] tensor,
    equal to the last bit to transform_batch's and to timm's eval transform's (see normalise).

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
    steps += [v2.ToPureTensor(), functools.partial(normalise, info=info)]
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


def tensor_source(dataset: Dataset) -> Optional[tuple[Tensor, Tensor]]:
    """(uint8 images [N, C, H, W], labels [N]) behind an ImageTensorDataset, or a Subset of
    one (indices into it follow the subset), else None: those data sets can be batched on the
    device by ``transform_batch`` instead of image by image."""
    if isinstance(dataset, Subset):
        inner = tensor_source(dataset.dataset)
        if inner is None:
            return None
        index = torch.as_tensor(dataset.indices, dtype=torch.long)
        return inner[0][index], inner[1][index]
    if isinstance(dataset, ImageTensorDataset):
        return dataset.images, dataset.labels
    return None


def draw_crops(batch_size: int, info: DatasetInfo, generator: torch.Generator
               ) -> tuple[Tensor, Tensor, Tensor]:
    """The random draws of a batch's augmentation: (top, left) crop offsets in [0, 2 x
    crop_padding] and a left-right flip flag per image (all False unless horizontal_flip)."""
    offsets = torch.randint(2 * info.crop_padding + 1, (2, batch_size), generator=generator)
    flips = torch.rand(batch_size, generator=generator) < 0.5
    if not info.horizontal_flip:
        flips = torch.zeros_like(flips)
    return offsets[0], offsets[1], flips


def transform_batch(images: Tensor, info: DatasetInfo,
                    crops: Optional[tuple[Tensor, Tensor, Tensor]] = None) -> Tensor:
    """uint8 [B, C, H, W] (on any device) -> normalised float32, as ``build_transform`` does
    image by image; with crops = draw_crops(...) each image is first zero-padded by
    crop_padding, cropped at its (top, left) and flipped where its flag says."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"images must be uint8 [B, C, H, W]; got {images.dtype} "
                         f"{tuple(images.shape)}")
    if crops is not None:
        top, left, flips = (value.to(images.device) for value in crops)
        batch, _, height, width = images.shape
        pad = info.crop_padding
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        columns = left[:, None] + torch.arange(width, device=images.device)
        columns = torch.where(flips[:, None], columns.flip(1), columns)
        rows = top[:, None] + torch.arange(height, device=images.device)
        images = padded[torch.arange(batch, device=images.device)[:, None, None, None],
                        torch.arange(images.shape[1], device=images.device)[None, :, None, None],
                        rows[:, None, :, None], columns[:, None, None, :]]
    return normalise(images, info)


def normalise(images: Tensor, info: DatasetInfo) -> Tensor:
    """uint8 [..., C, H, W] -> float32 (images / 255 - mean) / std: the arithmetic of timm's
    eval transform (ToTensor divides by 255, then Normalize), so that its tensors and snnzoo's
    are equal to the last bit (torchvision's ToDtype(scale=True) multiplies by 1 / 255, which
    rounds differently)."""
    mean, std = _normalisation(info, images.device)
    return (images.float() / 255.0 - mean) / std


@functools.lru_cache(maxsize=None)
def _normalisation(info: DatasetInfo, device: torch.device) -> tuple[Tensor, Tensor]:
    """(mean, std) as [C, 1, 1] tensors on the device, made once, not copied per batch."""
    return (torch.tensor(info.mean, device=device).view(-1, 1, 1),
            torch.tensor(info.std, device=device).view(-1, 1, 1))


class DeviceBatches:
    """The batches of an in-memory data set in order, each moved to the device as uint8 and
    transformed there (no augmentation): an evaluation loader yielding (images, labels)."""

    def __init__(self, images: Tensor, labels: Tensor, info: DatasetInfo, batch_size: int,
                 device: torch.device):
        self.images, self.labels, self.info = images, labels, info
        self.batch_size, self.device = batch_size, device

    def __len__(self) -> int:
        return -(-self.images.shape[0] // self.batch_size)

    def __iter__(self):
        for start in range(0, self.images.shape[0], self.batch_size):
            images = self.images[start:start + self.batch_size].to(self.device, non_blocking=True)
            yield (transform_batch(images, self.info),
                   self.labels[start:start + self.batch_size].to(self.device))


def evaluation_batches(dataset: Dataset, info: DatasetInfo, batch_size: int,
                       device: torch.device, workers: int = 0):
    """An evaluation loader of (images, labels) batches in order: DeviceBatches for in-memory
    data sets (transformed on the device), else a DataLoader with workers processes."""
    source = tensor_source(dataset)
    if source is None:
        return DataLoader(dataset, batch_size, num_workers=workers)
    return DeviceBatches(*source, info, batch_size, device)
