"""Data sets for searching and training: Fashion-MNIST, CIFAR-10/100, Tiny ImageNet, image folders.

    from snnzoo.data import dataset_info, load_dataset, first_batch

    info = dataset_info("cifar10")          # num_classes, input_size (C, H, W), mean, std
    train = load_dataset("cifar10", "train", data_dir="~/data", augment=True)
    images, labels = first_batch(train, batch_size=64, seed=0)

Every data set yields (normalised float32 image [C, H, W], int label). The default,
"fashion-mnist-sample", is 2,000 Fashion-MNIST images shipped inside the package, so
everything runs with no downloads; they all come from Fashion-MNIST's *test* set (see
snnzoo.data.fashion_mnist). Nothing is downloaded unless ``download=True``; missing files
raise DatasetNotFoundError, which says where it looked and how to provide the data.

In-memory data sets (everything but image folders) can also be batched on a device:
``tensor_source(dataset)`` gives their uint8 images and labels, ``transform_batch`` normalises
(and, with ``draw_crops``, augments) a whole uint8 batch where it lies, and
``evaluation_batches`` is an evaluation loader that does this (a DataLoader otherwise).
"""

from .base import (DEFAULT_DATA_DIR, DatasetInfo, DatasetNotFoundError, DeviceBatches,
                   ImageTensorDataset, draw_crops, evaluation_batches, exit_on_data_error,
                   tensor_source, transform_batch)
from .datasets import DATASETS, DEFAULT_DATASET, SPLITS, dataset_info, first_batch, load_dataset
from .fashion_mnist import FashionMNISTSample, read_fashion_mnist_sample
from .image_folder import ImageFileDataset

__all__ = ["DATASETS", "DEFAULT_DATASET", "DEFAULT_DATA_DIR", "SPLITS", "DatasetInfo",
           "DatasetNotFoundError", "DeviceBatches", "FashionMNISTSample", "ImageFileDataset",
           "ImageTensorDataset", "dataset_info", "draw_crops", "evaluation_batches",
           "exit_on_data_error", "first_batch", "load_dataset", "read_fashion_mnist_sample",
           "tensor_source", "transform_batch"]
