"""snnzoo.data: the embedded sample, the real Fashion-MNIST, CIFAR's on-disk format, image
folders, augmentation, fixed batches and the missing-data error."""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_close, assert_equal
from snnzoo.data import (DATASETS, DatasetNotFoundError, dataset_info, draw_crops, first_batch,
                         load_dataset, read_fashion_mnist_sample, tensor_source, transform_batch)
from snnzoo.data.fashion_mnist import DEBIAN_DIR, SAMPLE_TRAIN_PER_CLASS, read_idx

ROOT = Path(__file__).resolve().parents[1]
needs_debian_fashion_mnist = pytest.mark.skipif(
    not (DEBIAN_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
    reason=f"no Fashion-MNIST in {DEBIAN_DIR}; apt-get install dataset-fashion-mnist")


def normalised(images_uint8, name):
    """What a data set should yield for uint8 [..., C, H, W] pixels."""
    info = DATASETS[name]
    mean = torch.tensor(info.mean).view(-1, 1, 1)
    std = torch.tensor(info.std).view(-1, 1, 1)
    return (torch.as_tensor(images_uint8).float() / 255 - mean) / std


def stacked(dataset):
    images, labels = zip(*(dataset[index] for index in range(len(dataset))))
    return torch.stack(images), torch.tensor(labels)


# --- the embedded Fashion-MNIST sample ---------------------------------------------------------

def test_sample_file_holds_200_test_images_per_class():
    sample = read_fashion_mnist_sample()
    assert sample.images.shape == (2000, 28, 28) and sample.images.dtype == np.uint8
    assert sample.labels.shape == (2000,) and sample.labels.dtype == np.uint8
    assert np.bincount(sample.labels, minlength=10).tolist() == [200] * 10
    assert np.all(np.diff(sample.test_indices.astype(np.int64)) > 0), "not in test-set order"
    assert sample.test_indices.max() < 10_000
    assert sample.images.max() > 200 and sample.images.min() == 0, "pixels not in 0..255"


def test_sample_splits_are_disjoint_and_normalised_like_fashion_mnist():
    sample = read_fashion_mnist_sample()
    train, test = load_dataset(), load_dataset("fashion-mnist-sample", "test")
    assert len(train) == 10 * SAMPLE_TRAIN_PER_CLASS == 1600 and len(test) == 400
    train_images, train_labels = stacked(train)
    test_images, test_labels = stacked(test)
    assert train_images.shape == (1600, 1, 28, 28) and train_images.dtype == torch.float32
    assert torch.bincount(train_labels).tolist() == [160] * 10
    assert torch.bincount(test_labels).tolist() == [40] * 10
    # In each class, the first 160 sample images (in test-set order) are train, the rest test.
    is_train = np.zeros(2000, dtype=bool)
    for label in range(10):
        is_train[np.flatnonzero(sample.labels == label)[:160]] = True
    assert_close(train_images, normalised(sample.images[is_train][:, None], "fashion-mnist"),
                 1e-5, 1e-5, "sample train images")
    assert_close(test_images, normalised(sample.images[~is_train][:, None], "fashion-mnist"),
                 1e-5, 1e-5, "sample test images")
    assert_equal(train_labels, torch.from_numpy(sample.labels[is_train]).long(), "train labels")
    pixel_mean = train_images.mean().item()  # the sample is Fashion-MNIST, so close to 0
    assert abs(pixel_mean) < 0.1, f"normalised mean {pixel_mean}"


def test_dataset_info_table():
    assert dataset_info("fashion-mnist-sample").input_size == (1, 28, 28)
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("tinyimagenet").input_size == (3, 64, 64)
    assert dataset_info("cifar10", image_size=48).input_size == (3, 48, 48)
    for info in DATASETS.values():
        assert len(info.mean) == len(info.std) == info.input_size[0], info.name
    with pytest.raises(ValueError, match="unknown data set 'cifar-10'.*cifar10"):
        dataset_info("cifar-10")


# --- the full Fashion-MNIST ----------------------------------------------------------------

@needs_debian_fashion_mnist
def test_real_fashion_mnist_from_debian_files_contains_the_sample():
    train, test = load_dataset("fashion-mnist", "train"), load_dataset("fashion-mnist", "test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    image, label = test[0]
    assert image.shape == (1, 28, 28) and isinstance(label, int)

    sample = read_fashion_mnist_sample()
    indices = torch.from_numpy(sample.test_indices.astype(np.int64))
    assert_equal(test.images[indices, 0], torch.from_numpy(sample.images), "sample images")
    assert_equal(test.labels[indices], torch.from_numpy(sample.labels).long(), "sample labels")
    for label in range(10):  # the first 200 of each class, no more and no other
        first_of_class = torch.nonzero(test.labels == label).flatten()[:200]
        assert_equal(indices[torch.from_numpy(sample.labels) == label], first_of_class,
                     f"test-set indices of class {label}")


@needs_debian_fashion_mnist
def test_sample_script_writes_the_shipped_file(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "make_fashion_mnist_sample", ROOT / "scripts" / "make_fashion_mnist_sample.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--output", str(tmp_path / "sample.npz")]) == 0
    shipped = read_fashion_mnist_sample(ROOT / "snnzoo" / "data" / "fashion_mnist_sample.npz")
    written = read_fashion_mnist_sample(tmp_path / "sample.npz")
    for field in written._fields:
        np.testing.assert_array_equal(getattr(written, field), getattr(shipped, field), field)
        assert getattr(written, field).dtype == getattr(shipped, field).dtype, field


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    content = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        import gzip
        content = gzip.compress(content)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@pytest.mark.parametrize("layout", ["FashionMNIST/raw", "."])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_fashion_mnist_idx_files_in_data_dir(tmp_path, layout, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    directory = tmp_path / layout
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", labels)
    np.testing.assert_array_equal(read_idx(directory / f"t10k-images-idx3-ubyte{suffix}"), images)
    test = load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    got_images, got_labels = stacked(test)
    assert_close(got_images, normalised(images[:, None], "fashion-mnist"), 1e-5, 1e-5, "images")
    assert got_labels.tolist() == labels.tolist()
    with pytest.raises(DatasetNotFoundError, match="Fashion-MNIST"):
        load_dataset("fashion-mnist", "train", data_dir=tmp_path)


# --- CIFAR, from files written in CIFAR's own format --------------------------------------------

def write_cifar_batch(path, images_hwc, labels, label_key):
    """CIFAR's python batch: rows of 1024 R, 1024 G, 1024 B values, each plane row-major."""
    rows = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), 3072)
    batch = {b"batch_label": b"test", b"data": rows, label_key: list(labels),
             b"filenames": [b"x.png"] * len(labels)}
    if label_key == b"fine_labels":
        batch[b"coarse_labels"] = [label // 5 for label in labels]
    path.write_bytes(pickle.dumps(batch))


def random_images(rng, count):
    images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    images[:, 0, 0] = [250, 120, 5]  # a pixel whose channels cannot be confused
    return images


@pytest.fixture(scope="module")
def cifar10_dir(tmp_path_factory):
    """A CIFAR-10 in its own layout: 5 train batches of 2 images and a test batch of 3."""
    root = tmp_path_factory.mktemp("cifar10")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(10)
    truth = {"train": (random_images(rng, 10), rng.integers(0, 10, 10)),
             "test": (random_images(rng, 3), np.array([7, 0, 9]))}
    for batch in range(5):
        images, labels = truth["train"]
        write_cifar_batch(folder / f"data_batch_{batch + 1}", images[2 * batch:2 * batch + 2],
                          labels[2 * batch:2 * batch + 2].tolist(), b"labels")
    write_cifar_batch(folder / "test_batch", *truth["test"], b"labels")
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return root, truth


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_images_come_back_in_rgb_order(cifar10_dir, split):
    root, truth = cifar10_dir
    images_hwc, labels = truth[split]
    dataset = load_dataset("cifar10", split, data_dir=root)
    assert dataset.classes[0] == "airplane" and len(dataset) == len(labels)
    assert dataset.images[0, :, 0, 0].tolist() == [250, 120, 5], "channels are not R, G, B"
    assert_equal(dataset.images, torch.from_numpy(images_hwc).permute(0, 3, 1, 2), "CIFAR pixels")
    got_images, got_labels = stacked(dataset)
    assert_close(got_images, normalised(images_hwc.transpose(0, 3, 1, 2), "cifar10"),
                 1e-5, 1e-5, "normalised CIFAR images")
    assert got_labels.tolist() == labels.tolist()
    # data_dir may also be the cifar-10-batches-py folder itself
    assert len(load_dataset("cifar10", split, data_dir=root / "cifar-10-batches-py")) == len(labels)


def test_cifar100_reads_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(100)
    train_images, test_images = random_images(rng, 4), random_images(rng, 2)
    write_cifar_batch(folder / "train", train_images, [99, 0, 42, 17], b"fine_labels")
    write_cifar_batch(folder / "test", test_images, [5, 64], b"fine_labels")
    names = [f"class{i}".encode() for i in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": names,
                                                b"coarse_label_names": names[:20]}))
    train = load_dataset("cifar100", "train", data_dir=tmp_path)
    test = load_dataset("cifar100", "test", data_dir=tmp_path)
    assert stacked(train)[1].tolist() == [99, 0, 42, 17]
    assert stacked(test)[1].tolist() == [5, 64]
    assert len(train.classes) == 100
    assert_equal(test.images, torch.from_numpy(test_images).permute(0, 3, 1, 2), "CIFAR-100 pixels")


# --- augmentation and fixed batches -----------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist-sample"])
def test_augmentation_crops_with_black_padding_and_keeps_shape(cifar10_dir, name):
    root, _ = cifar10_dir
    plain = load_dataset(name, "train", data_dir=root)
    augmented = load_dataset(name, "train", data_dir=root, augment=True)
    info = DATASETS[name]
    black = normalised(torch.zeros(info.input_size[0], 1, 1, dtype=torch.uint8), name)
    torch.manual_seed(0)
    changed = 0
    for index in range(8):
        image, label = augmented[index]
        assert image.shape == info.input_size and image.dtype == torch.float32
        assert label == plain[index][1]
        original = plain[index][0]
        changed += not torch.equal(image, original)
        # every pixel is either padding or a pixel value of the original
        for channel in range(info.input_size[0]):
            allowed = torch.cat([original[channel].flatten(), black[channel].flatten()])
            assert torch.isin(image[channel], allowed).all(), f"{name} image {index}"
    assert changed > 0, "augment=True never changed an image"


@pytest.mark.parametrize("name", ["cifar10", "fashion-mnist-sample"])
def test_batch_transform_equals_torchvision_image_by_image(cifar10_dir, name):
    """transform_batch with drawn crops = torchvision's pad, crop, flip and normalise of each
    image at the same offsets; without crops = the plain per-image transform."""
    from torchvision.transforms.v2 import functional as TF
    root, _ = cifar10_dir
    info = DATASETS[name]
    plain = load_dataset(name, "train", data_dir=root)
    images, labels = tensor_source(torch.utils.data.Subset(plain, [5, 0, 3, 1, 7, 2]))
    assert torch.equal(labels, torch.tensor([plain[i][1] for i in [5, 0, 3, 1, 7, 2]]))
    assert_close(transform_batch(images, info), torch.stack([plain[i][0] for i in [5, 0, 3, 1, 7, 2]]),
                 0, 0, f"{name} batch without augmentation")
    top, left, flips = draw_crops(len(images), info, torch.Generator().manual_seed(1))
    assert flips.any() == info.horizontal_flip and int(top.max()) <= 2 * info.crop_padding
    expected = []
    for image, y, x, flip in zip(images, top.tolist(), left.tolist(), flips.tolist()):
        pad = info.crop_padding
        image = TF.crop(TF.pad(image, [pad]), y, x, *info.input_size[1:])
        image = TF.horizontal_flip(image) if flip else image
        expected.append(TF.normalize(image.float() / 255, info.mean, info.std))
    assert_close(transform_batch(images, info, (top, left, flips)), torch.stack(expected),
                 1e-6, 1e-6, f"{name} augmented batch")


@pytest.mark.parametrize("name, model_name, mode", [("cifar10", "snasnet_cifar10", "RGB"),
                                                     ("fashion-mnist-sample", "snasnet_fmnist", "L")])
def test_timms_eval_transform_of_pil_images_equals_load_dataset(cifar10_dir, name, model_name,
                                                                mode):
    """timm.data.create_transform(**resolve_model_data_config(model)) on the PIL images gives
    the tensors load_dataset and transform_batch give, to the last bit."""
    import timm
    import snnzoo
    root, _ = cifar10_dir
    model = snnzoo.create_model(model_name, width=4, classifier_width=16)
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model))
    data = load_dataset(name, "test", data_dir=root)
    images, _ = tensor_source(data)
    images = images[:16]
    pictures = [Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy(), mode) for image in images]
    through_timm = torch.stack([transform(picture) for picture in pictures])
    assert through_timm.shape == (len(images), *model.pretrained_cfg["input_size"])
    assert_close(through_timm, torch.stack([data[index][0] for index in range(len(images))]), 0, 0,
                 f"{name}: timm's transform against load_dataset's")
    assert_close(through_timm, transform_batch(images, DATASETS[name]), 0, 0,
                 f"{name}: timm's transform against transform_batch")


def test_batch_transform_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        transform_batch(torch.zeros(2, 1, 28, 28), DATASETS["fashion-mnist"])


def test_first_batch_is_fixed_by_the_seed_and_leaves_global_state_alone():
    dataset = load_dataset("fashion-mnist-sample", augment=True)
    state = torch.get_rng_state()
    images, labels = first_batch(dataset, 32, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert images.shape == (32, 1, 28, 28) and labels.dtype == torch.int64
    again_images, again_labels = first_batch(dataset, 32, seed=3)
    assert torch.equal(images, again_images) and torch.equal(labels, again_labels)
    other_images, _ = first_batch(dataset, 32, seed=4)
    assert not torch.equal(images, other_images)
    assert len(set(first_batch(load_dataset(), 1600, seed=0)[1].tolist())) == 10
    with pytest.raises(ValueError, match="batch_size=1601 but the data set has 1600"):
        first_batch(load_dataset(), 1601)


# --- missing data -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, ways", [
    ("fashion-mnist", ["--data-dir", "--download", "apt-get install dataset-fashion-mnist",
                       "fashion-mnist-sample"]),
    ("cifar10", ["--data-dir", "cifar-10-batches-py", "--download", "fashion-mnist-sample"]),
    ("cifar100", ["--data-dir", "cifar-100-python", "--download", "fashion-mnist-sample"]),
    ("tinyimagenet", ["--data-dir", "tiny-imagenet-200", "no download", "fashion-mnist-sample"]),
])
def test_missing_data_names_the_directory_and_every_way(tmp_path, name, ways):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as caught:
        load_dataset(name, "train", data_dir=empty)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert DATASETS[name].title in message and str(empty) in message, message
    for way in ways:
        assert way in message, f"{way!r} missing from:\n{message}"
    assert empty in caught.value.searched


# --- image folders ------------------------------------------------------------------------------

def write_pngs(directory, count, size, seed):
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)
    for index, image in enumerate(images):
        Image.fromarray(image).save(directory / f"{index}.png")
    return images


def test_image_folder_with_train_and_val(tmp_path):
    pixels = {(split, name): write_pngs(tmp_path / split / name, count, (10, 12), seed)
              for seed, (split, name, count) in enumerate(
                  [("train", "cat", 3), ("train", "dog", 2), ("val", "cat", 1), ("val", "dog", 2)])}
    info = dataset_info(str(tmp_path))
    assert info.num_classes == 2 and info.input_size == (3, 10, 12)
    train = load_dataset(tmp_path, "train")
    val = load_dataset(str(tmp_path), "test")
    assert train.classes == ["cat", "dog"] and len(train) == 5 and len(val) == 3
    image, label = val[1]
    assert label == 1 and image.shape == (3, 10, 12)
    mean, std = torch.tensor(info.mean).view(3, 1, 1), torch.tensor(info.std).view(3, 1, 1)
    dog = torch.from_numpy(pixels["val", "dog"][0]).permute(2, 0, 1)
    expected = (dog.float() / 255 - mean) / std
    assert_close(image, expected, 1e-5, 1e-5, "PNG pixels")
    resized, _ = load_dataset(tmp_path, "train", image_size=8, augment=True)[0]
    assert resized.shape == (3, 8, 8)


def test_plain_class_folder_has_only_a_train_split(tmp_path):
    write_pngs(tmp_path / "a", 2, (6, 6), 0)
    write_pngs(tmp_path / "b", 1, (6, 6), 1)
    assert len(load_dataset(tmp_path, "train")) == 3
    with pytest.raises(DatasetNotFoundError, match="no test split"):
        load_dataset(tmp_path, "test")


def test_tiny_imagenet_official_val_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    for wnid in ["n01443537", "n01629819"]:
        write_pngs(root / "train" / wnid / "images", 2, (64, 64), 0)
    write_pngs(root / "val" / "images", 3, (64, 64), 1)
    (root / "val" / "val_annotations.txt").write_text("".join(
        f"{index}.png\t{wnid}\t0\t0\t10\t10\n"
        for index, wnid in enumerate(["n01629819", "n01443537", "n01629819"])))
    train = load_dataset("tinyimagenet", "train", data_dir=tmp_path)
    val = load_dataset("tinyimagenet", "test", data_dir=tmp_path, augment=True)
    assert len(train) == 4 and stacked(val)[1].tolist() == [1, 0, 1]
    assert val[0][0].shape == (3, 64, 64)


@pytest.mark.parametrize("line, problem", [
    ("0.png n01443537 0 0 10 10", r"line 2 \('0.png n01443537 0 0 10 10'\): it is not "
                                  r"'file<TAB>class<TAB>...'"),
    ("0.png\tn09999999\t0", r"line 2 \('0.png\\tn09999999\\t0'\): class 'n09999999' has no "
                            r"folder in the train split"),
])
def test_tiny_imagenet_bad_val_annotations_name_the_line(tmp_path, line, problem):
    root = tmp_path / "tiny-imagenet-200"
    write_pngs(root / "train" / "n01443537" / "images", 1, (64, 64), 0)
    write_pngs(root / "val" / "images", 2, (64, 64), 1)
    (root / "val" / "val_annotations.txt").write_text(f"1.png\tn01443537\t0\t0\t9\t9\n{line}\n")
    with pytest.raises(ValueError, match=f"val_annotations.txt, {problem}"):
        load_dataset("tinyimagenet", "test", data_dir=tmp_path)


def test_download_only_when_asked(tmp_path, monkeypatch):
    """download=True hands torchvision the data directory, then reads what it wrote."""
    import torchvision.datasets

    calls = []

    def fake_fashion_mnist(root, train, download):
        calls.append((root, train, download))
        for prefix, count in [("train", 4), ("t10k", 2)]:
            raw = Path(root) / "FashionMNIST" / "raw"
            write_idx(raw / f"{prefix}-images-idx3-ubyte", np.full((count, 28, 28), 9, np.uint8))
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(count, dtype=np.uint8))

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", fake_fashion_mnist)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    assert calls == []
    assert len(load_dataset("fashion-mnist", "test", data_dir=tmp_path, download=True)) == 2
    assert calls == [(str(tmp_path), False, True)]
    assert len(load_dataset("fashion-mnist", "train", data_dir=tmp_path, download=True)) == 4
    assert len(calls) == 1, "downloaded again although the files were there"


# --- corrupt files and inconsistent folders -----------------------------------------------------

def test_truncated_gzipped_idx_file_names_the_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    write_idx(path, np.arange(200, dtype=np.uint8) % 10)
    path.write_bytes(path.read_bytes()[:-12])  # cut short by an interrupted download
    with pytest.raises(ValueError, match=f"{path} cannot be decompressed .* truncated or corrupt: "
                                         "delete it and download it again"):
        read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=f"{path} cannot be decompressed"):
        read_idx(path)


def test_fashion_mnist_labels_out_of_range_are_refused(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3, 10], np.uint8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte: 1 labels outside 0-9, e.g. 10"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)


def _cifar10_copy(cifar10_dir, tmp_path):
    import shutil
    root, _ = cifar10_dir
    shutil.copytree(root, tmp_path / "copy")
    return tmp_path / "copy", tmp_path / "copy" / "cifar-10-batches-py" / "test_batch"


@pytest.mark.parametrize("damage, message", [
    ("truncated", r"cannot be read as a CIFAR batch \(.*\); it may be truncated or corrupt: delete "
                  r"it and run again with --download"),
    ("str keys", r"is not a CIFAR batch of the python version: it needs the keys \[b'data', "
                 r"b'labels'\] \(bytes, .*\), found \['data', 'labels'\]"),
    ("label 10", r"1 labels outside 0-9 \(the 10 classes of batches.meta\), e.g. 10"),
    ("int64 pixels", r"b'data' holds int64 values from 0 to 299, not pixels 0-255 as CIFAR "
                     r"stores them"),
])
def test_corrupt_cifar_batches_name_the_file(cifar10_dir, tmp_path, damage, message):
    root, batch = _cifar10_copy(cifar10_dir, tmp_path)
    if damage == "truncated":
        batch.write_bytes(batch.read_bytes()[:1000])
    elif damage == "int64 pixels":  # would wrap around to other pixels as uint8
        batch.write_bytes(pickle.dumps({b"data": np.arange(2 * 3072).reshape(2, 3072) % 300,
                                        b"labels": [1, 2]}))
    elif damage == "str keys":
        batch.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [1]}))
    else:
        write_cifar_batch(batch, np.zeros((2, 32, 32, 3), np.uint8), [3, 10], b"labels")
    with pytest.raises(ValueError, match=f"{batch}.*{message}"):
        load_dataset("cifar10", "test", data_dir=root)


def test_test_split_class_folders_missing_from_train_are_refused(tmp_path):
    for split, name in [("train", "cat"), ("train", "dog"), ("val", "cat"), ("val", "dog"),
                        ("val", "cow"), ("val", "eel")]:
        write_pngs(tmp_path / split / name, 1, (6, 6), 0)
    with pytest.raises(ValueError, match=r"val has class folders that .*train lacks: \['cow', "
                                         r"'eel'\]; their images have no label"):
        load_dataset(tmp_path, "test")
    assert len(load_dataset(tmp_path, "train")) == 2
