"""Command-line options that search, train and validate share, so that they read the same."""

from __future__ import annotations

import argparse

import torch

from snnzoo.data import DEFAULT_DATASET


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir and --download, as snnzoo.data.load_dataset takes them."""
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="fashion-mnist-sample (embedded, the default), fashion-mnist, "
                             "cifar10, cifar100, tinyimagenet, or an image folder")
    parser.add_argument("--data-dir", help="where the data set lies")
    parser.add_argument("--download", action="store_true", help="download the data set if missing")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:INDEX (default: cuda where a GPU is visible, "
                             "else cpu)")
