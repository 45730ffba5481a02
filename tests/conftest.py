"""Test setup: Triton kernels run under the interpreter unless SNNZOO_TEST_CUDA=1, and an
empty variants directory. Both must be set before snnzoo and triton are imported: here, first.
"""

import os
import tempfile

if os.environ.get("SNNZOO_TEST_CUDA") != "1":
    os.environ.setdefault("TRITON_INTERPRET", "1")
# Searched variants on this machine must not join the registry the tests walk.
os.environ["SNNZOO_VARIANTS_DIR"] = tempfile.mkdtemp(prefix="snnzoo-test-variants-")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session")
def device():
    """CUDA when asked for (SNNZOO_TEST_CUDA=1 on a GPU machine), else the CPU."""
    if os.environ.get("SNNZOO_TEST_CUDA") == "1":
        assert torch.cuda.is_available(), "SNNZOO_TEST_CUDA=1 but no CUDA device is visible"
        return torch.device("cuda")
    return torch.device("cpu")


def assert_close(actual, expected, atol, rtol, what):
    """torch.testing.assert_close with a message naming what differs and where."""
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
    difference = (actual.double() - expected.double()).abs()
    bad = difference > atol + rtol * expected.double().abs()
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.numel()} elements differ; first at {index}: "
            f"{actual[index].item()} vs {expected[index].item()}; max difference "
            f"{difference.max().item():.3g} (atol={atol}, rtol={rtol})")


def assert_equal(actual, expected, what):
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
    bad = actual != expected
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.numel()} elements differ; first "
                             f"at {index}: {actual[index].item()} vs {expected[index].item()}")


def pytest_collection_modifyitems(config, items):
    """Slow tests first, the rest in their order: under pytest-xdist (make test, which sends
    each file to one worker) the files with long tests then start while there is other work
    left for the other worker, so that the workers finish together."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
