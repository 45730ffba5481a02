"""Command-line options that the tools share, so that they read the same, and the one rule
for their failures: a failure caused by the input or the environment ends the process with
one ``error:`` line that says what to do; a traceback only for bugs, or with --debug."""

from __future__ import annotations

import argparse
import contextlib
import math
from typing import Iterator, Optional

import torch

from snnzoo._messages import first_line
from snnzoo.data import DEFAULT_DATASET


def number_at_least(minimum, kind=int, above=False):
    """An argparse type: a number of `kind` that is >= minimum (> minimum with above=True)."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        if value < minimum or (above and value == minimum):
            raise argparse.ArgumentTypeError(
                f"{text} must be {'greater than' if above else 'at least'} {minimum}")
        return value
    return convert


positive_integer = number_at_least(1)  # an argparse type: a whole number of at least 1


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--dataset, --data-dir and --download, as snnzoo.data.load_dataset takes them."""
    parser.add_argument("--dataset", default=DEFAULT_DATASET,
                        help="fashion-mnist-sample (embedded, the default), fashion-mnist, "
                             "cifar10, cifar100, tinyimagenet, or an image folder")
    parser.add_argument("--data-dir", help="where the data set lies")
    parser.add_argument("--download", action="store_true", help="download the data set if missing")


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """--device, refused at parsing unless this machine can compute on it."""
    parser.add_argument("--device", type=_usable_device,
                        default="cuda" if torch.cuda.is_available() else "cpu",
                        help="cpu, cuda or cuda:INDEX (default: cuda where a GPU is visible, "
                             "else cpu)")


def _usable_device(name: str) -> str:
    problem = device_problem(name)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return name


def device_problem(name: str) -> Optional[str]:
    """None, or why device `name` cannot be used on this machine."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        return f"{name!r} is not a device; use cpu, cuda or cuda:INDEX"
    if device.type == "cpu":
        return None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return (f"{name} but no CUDA GPU is visible here (torch.cuda.is_available() is "
                    f"False); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            return (f"{name} but only {torch.cuda.device_count()} CUDA GPU(s) are visible; use "
                    f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return None
    try:
        torch.empty(1, device=device)
    except Exception as error:  # noqa: BLE001 - any backend's refusal reads the same
        return f"{name} cannot be used here ({first_line(error)}); use --device cpu"
    return None


_PLAIN_OS_ERRORS = (OSError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                    PermissionError, FileExistsError)


def _user_errors() -> tuple:
    from snnzoo.models._pretrained import WeightsNotPublishedError
    return OSError, ValueError, WeightsNotPublishedError


def add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of a failure instead of one error line")


@contextlib.contextmanager
def cli_errors(debug: bool = False) -> Iterator[None]:
    """Within it, an error of the input or the environment (a missing, unreadable or unwritable
    file, a corrupt image, an unknown model or a bad argument, which snnzoo raises as OSError or
    ValueError with the fix in the message) ends the process with one ``error:`` line. Other
    exceptions are bugs and keep their traceback; with debug, every exception does."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as error:
        if debug:
            raise
        raise SystemExit(f"error: the device ran out of memory ({str(error).splitlines()[0]}); "
                         f"lower --batch-size (--debug shows where)") from None
    except _user_errors() as error:
        if debug:
            raise
        message = str(error).strip() or type(error).__name__
        if type(error) in _PLAIN_OS_ERRORS:  # the system's words name the path, not the fix
            message += "; check that the path exists and can be read (or, for output, written)"
        raise SystemExit(f"error: {message} (--debug shows where)") from None
