"""Write snnzoo's embedded Fashion-MNIST sample from the full Fashion-MNIST test set.

The sample is the first PER_CLASS images of each class, in test-set order, kept in test-set
order: images uint8 [10 * PER_CLASS, 28, 28], labels uint8, and test_indices uint16 (each
image's index in the test set), in a compressed .npz. The selection is deterministic, so
running this again on the same files writes the same arrays.

  python scripts/make_fashion_mnist_sample.py                      # from Debian's files
  python scripts/make_fashion_mnist_sample.py --data-dir ~/data    # or torchvision's layout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from snnzoo.data.fashion_mnist import DEBIAN_DIR, SAMPLE_FILE, find_fashion_mnist, read_idx


def select_first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices, ascending, of the first per_class occurrences of every label."""
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if members.size < per_class:
            raise ValueError(f"class {label} has only {members.size} images; asked for {per_class}")
        chosen.append(members[:per_class])
    return np.sort(np.concatenate(chosen))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEBIAN_DIR,
                        help="directory with t10k-images-idx3-ubyte[.gz] and "
                             "t10k-labels-idx1-ubyte[.gz], directly or in FashionMNIST/raw/ "
                             "(default: %(default)s, from apt-get install dataset-fashion-mnist)")
    parser.add_argument("--per-class", type=int, default=200,
                        help="images per class (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=SAMPLE_FILE,
                        help="the .npz to write (default: the package's, %(default)s)")
    args = parser.parse_args(argv)

    files = find_fashion_mnist("test", args.data_dir)
    if files is None:
        print(f"error: no Fashion-MNIST test set in {args.data_dir} (nor in its FashionMNIST/raw/"
              f"); install it with apt-get install dataset-fashion-mnist or pass --data-dir",
              file=sys.stderr)
        return 1
    images, labels = (read_idx(path) for path in files)
    indices = select_first_per_class(labels, args.per_class)
    np.savez_compressed(args.output, images=images[indices],
                        labels=labels[indices].astype(np.uint8),
                        test_indices=indices.astype(np.uint16))
    print(f"wrote {len(indices)} images from {files[0]} to {args.output} "
          f"({args.output.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
