"""Image-folder data sets: Tiny ImageNet, and any directory of class folders.

A data set directory holds either ``train/`` plus ``val/`` (or ``test/``), each with one
folder of images per class, or just the class folders themselves (then it has only a "train"
split). Images may sit deeper inside a class folder (Tiny ImageNet's train/<wnid>/images/).
Tiny ImageNet's own val/ — a flat val/images/ with val/val_annotations.txt naming each
image's class — is read as it comes from the official archive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from .base import DEFAULT_DATA_DIR, SAMPLE_WAY, DatasetNotFoundError

__all__ = ["ImageFileDataset", "describe_image_folder", "find_tiny_imagenet", "load_image_folder",
           "split_dirs", "tiny_imagenet_not_found"]

TINY_IMAGENET_FOLDER = "tiny-imagenet-200"
_TEST_SPLIT_NAMES = ("val", "test")


class ImageFileDataset(Dataset):
    """Image files on disk with their labels; yields ``(transform(RGB image), label)``."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str],
                 transform: Optional[Callable] = None):
        self.samples = samples
        self.classes = classes
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        path, label = self.samples[index]
        with Image.open(path) as image:
            image = image.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, label


def split_dirs(root: Path) -> dict[str, Path]:
    """The directory of each split that root has: {"train": ..., "test": ...}."""
    if not (root / "train").is_dir():
        return {"train": root}
    splits = {"train": root / "train"}
    for name in _TEST_SPLIT_NAMES:
        if (root / name).is_dir():
            splits["test"] = root / name
            break
    return splits


def _annotated_samples(split_dir: Path, class_to_index: dict[str, int]) -> list[tuple[str, int]]:
    """Tiny ImageNet's val/: lines "file<TAB>wnid<TAB>box..." in val_annotations.txt."""
    samples = []
    path = split_dir / "val_annotations.txt"
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in class_to_index:
                problem = (f"class {fields[1]!r} has no folder in the train split"
                           if len(fields) >= 2 else "it is not 'file<TAB>class<TAB>...'")
                raise ValueError(f"{path}, line {number} ({line[:60]!r}): {problem}; extract "
                                 f"val/ again from the official tiny-imagenet-200.zip")
            samples.append((str(split_dir / "images" / fields[0]), class_to_index[fields[1]]))
    return samples


def _samples(split_dir: Path, class_to_index: dict[str, int]) -> list[tuple[str, int]]:
    if (split_dir / "val_annotations.txt").is_file():
        return _annotated_samples(split_dir, class_to_index)
    return make_dataset(str(split_dir), class_to_index, extensions=IMG_EXTENSIONS)


def _folder_not_found(root: Path, problem: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"Image folder {root}", [root], [
        f"a directory with train/ and val/ (or test/), each holding one folder of images per "
        f"class ({', '.join(sorted(IMG_EXTENSIONS))})",
        "a directory of class folders, for the train split only",
        SAMPLE_WAY,
    ], problem=problem)


def load_image_folder(root: Path, split: str, transform: Optional[Callable] = None
                      ) -> ImageFileDataset:
    """The split of an image-folder data set; class indices follow the sorted folder names of
    train/, so both splits number the classes alike."""
    if not root.is_dir():
        raise _folder_not_found(root, "no such directory")
    splits = split_dirs(root)
    if split not in splits:
        raise _folder_not_found(root, f"no {split} split: it has train/ but neither "
                                f"{'/ nor '.join(_TEST_SPLIT_NAMES)}/")
    try:
        classes, class_to_index = find_classes(str(splits["train"]))
        if split != "train" and not (splits[split] / "val_annotations.txt").is_file():
            extra = sorted(set(find_classes(str(splits[split]))[0]) - set(classes))
            if extra:
                raise ValueError(f"image folder {root}: {splits[split]} has class folders that "
                                 f"{splits['train']} lacks: {extra}; their images have no "
                                 f"label. Add those classes to the train split, or move them "
                                 f"out of {splits[split]}")
        samples = _samples(splits[split], class_to_index)
    except (FileNotFoundError, KeyError) as error:
        raise _folder_not_found(root, f"the {split} split is not laid out as class "
                                f"folders ({error})") from error
    return ImageFileDataset(samples, classes, transform)


def describe_image_folder(root: Path, image_size: Optional[int] = None
                          ) -> tuple[list[str], tuple[int, int]]:
    """(class names, (height, width)) of an image folder; the size is image_size, square, or
    else that of the first image of the first class of the train split."""
    dataset = load_image_folder(root, "train")
    if not dataset.samples:
        raise _folder_not_found(root, "no images in the train split")
    if image_size is not None:
        return dataset.classes, (image_size, image_size)
    with Image.open(dataset.samples[0][0]) as image:
        return dataset.classes, (image.height, image.width)


def find_tiny_imagenet(data_dir: Optional[Path]) -> Optional[Path]:
    for directory in _tiny_imagenet_dirs(data_dir):
        if (directory / "train").is_dir() and (directory / "val").is_dir():
            return directory
    return None


def _tiny_imagenet_dirs(data_dir: Optional[Path]) -> list[Path]:
    if data_dir is not None:
        return [data_dir / TINY_IMAGENET_FOLDER, data_dir]
    return [DEFAULT_DATA_DIR / TINY_IMAGENET_FOLDER]


def tiny_imagenet_not_found(data_dir: Optional[Path]) -> DatasetNotFoundError:
    return DatasetNotFoundError("Tiny ImageNet", _tiny_imagenet_dirs(data_dir), [
        f"--data-dir DIR (data_dir=DIR), where DIR/{TINY_IMAGENET_FOLDER}/ (or DIR itself) holds "
        "train/ and val/: train/ with one folder per class (the official archive's "
        "train/<wnid>/images/ works), val/ either with class folders or the official "
        "val/images/ + val/val_annotations.txt",
        "no download: torchvision does not provide Tiny ImageNet; fetch "
        "tiny-imagenet-200.zip yourself and extract it into DIR",
        SAMPLE_WAY,
    ])
