"""Shared measurement code for the benchmark scripts: timing, peak memory, result files.

Every script measures the baseline and snnzoo in the same run, appends one CSV row per
measurement to ``benchmarks/results/<subject>.csv`` (naming the device and versions) and
prints a markdown table of ratios against the baseline for the README.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import multiprocessing
import os
import re
import resource
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# The CPU features that decide which kernels oneDNN and inductor pick, recorded with every figure.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model (as lscpu shows it), its CPU_FLAGS and the threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    present = " ".join(flag for flag in CPU_FLAGS if flag in flags) or "none of " + " ".join(CPU_FLAGS)
    return f"{model} CPU ({present}), {torch.get_num_threads()} threads"


def versions() -> str:
    parts = [f"torch {torch.__version__}", f"python {platform.python_version()}"]
    try:
        import triton
        parts.append(f"triton {triton.__version__}")
    except ImportError:
        pass
    if os.environ.get("TRITON_INTERPRET") == "1":
        parts.append("TRITON_INTERPRET=1")
    if os.environ.get("SNNZOO_COMPILE_CPU") == "0":
        parts.append("SNNZOO_COMPILE_CPU=0")
    return ", ".join(parts)


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_it(run: Callable[[], object], device: torch.device, warmup: int, repeats: int):
    """Median and spread (min, max) in milliseconds of run() over repeats, after warm-up."""
    for _ in range(warmup):
        run()
    _synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times), max(times)


def time_in_turns(runs: dict[str, Callable[[], object]], device: torch.device, warmup: int,
                  repeats: int) -> dict[str, tuple[float, float, float]]:
    """time_it for several contenders measured in turns (a, b, a, b, ...), so that a slow spell
    of a shared machine falls on every contender alike. name -> (median, min, max) in ms."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    _synchronize(device)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            _synchronize(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: (statistics.median(found), min(found), max(found)) for name, found in times.items()}


def peak_memory_mb(run: Callable[[], object], device: torch.device) -> float:
    """Peak memory allocated by torch during run() above what was allocated before it (MiB).

    CUDA reads the caching allocator's counters; the CPU replays the profiler's allocation
    events in time order.
    """
    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        _synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((event for event in prof.profiler.kineto_results.events()
                     if event.name() == "[memory]"), key=lambda event: event.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak / 2**20


# Children for peak_rss_mb start from a server process that has imported torch and snnzoo
# once, instead of importing them again each time (seconds apiece). The script itself is
# imported in each child ("__main__" in this list is not honoured before Python 3.13), cheaply.
_CHILDREN = multiprocessing.get_context("forkserver")
_CHILDREN.set_forkserver_preload(["torch", "torch.profiler", "timm", "snnzoo", "snnzoo.convert",
                                  "snnzoo.search"])


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    found = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(found[1]) / 1024


def _reset_peak_rss() -> bool:
    """Set this process's peak resident set size (VmHWM) to its current size (Linux 4.0 on);
    False where the system does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _measure_peak_rss(sender, prepare: Callable, arguments: tuple) -> None:
    try:
        run = prepare(*arguments)
        run()  # warm-up: compiling, first-call allocations, oneDNN's kernel choices
        gc.collect()
        if _reset_peak_rss():
            run()
            sender.send(("ok", _status_mb("VmHWM")))
        else:  # the peak over the child's whole life, building and warm-up included
            run()
            sender.send(("ok", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    except BaseException as error:  # noqa: BLE001: reported in the parent, with the traceback
        import traceback
        sender.send(("error", f"{error!r}\n{traceback.format_exc()}"))


def peak_rss_mb(prepare: Callable[..., Callable[[], object]], *arguments) -> float:
    """Peak resident set size (MiB) of a process of its own that runs one contender alone.

    A new child process (forked from a server process that has imported torch and snnzoo and
    run nothing) calls run = prepare(*arguments), which builds the contender and its input,
    runs run() once to warm up, resets the kernel's high-water mark of its resident set
    (Linux's /proc/self/clear_refs), runs run() once more and reads that mark (VmHWM): the
    peak memory of a process that has the contender built and is running it, whatever the
    other contenders of the timing process hold or left to malloc. It counts the weights, the
    activations and saved tensors, what malloc keeps, and the pages of torch's libraries and
    Python's objects that the child touches; a child forked this way does not count the
    library pages that only importing touched, so a process started afresh shows a few hundred
    MiB more, alike for every contender. Where the mark cannot be reset the peak covers the
    child's whole life (getrusage's ru_maxrss). prepare must be a module-level function of the
    benchmark script (the child finds it by name).
    """
    receiver, sender = _CHILDREN.Pipe(duplex=False)
    child = _CHILDREN.Process(target=_measure_peak_rss, args=(sender, prepare, arguments))
    child.start()
    sender.close()
    try:
        status, value = receiver.recv()
    except EOFError:
        status, value = "error", "it died without a word (killed for memory?)"
    child.join()
    if status != "ok":
        raise RuntimeError(f"measuring the peak RSS of {prepare.__name__}{arguments} in a child "
                           f"process failed (exit status {child.exitcode}): {value}")
    return value


def append_csv(subject: str, rows: list[dict]) -> Path:
    """Append rows (dicts with the same keys) to results/<subject>.csv. A column the file does
    not have yet is added to its header (earlier rows leave it empty); the file is rewritten
    atomically then."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{subject}.csv"
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows = [{"date": stamp, **row} for row in rows]
    old_rows, fields = [], []
    if path.exists():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            old_rows = list(reader)
    missing = [key for row in rows for key in row if key not in fields]
    fields += list(dict.fromkeys(missing))
    if old_rows and not missing:
        with open(path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=fields).writerows(rows)
        return path
    staging = path.with_suffix(".csv.tmp")
    with open(staging, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(old_rows + rows)
    os.replace(staging, path)
    return path


def record_unless_mismatched(subject: str, rows: list[dict], mismatches: list[str],
                             no_csv: bool, what: str) -> int:
    """The exit status of a benchmark: 1, recording nothing, when a check failed (mismatches,
    printed after what: the reason the timings are not comparable), else 0 after appending
    rows to results/<subject>.csv (unless no_csv)."""
    if mismatches:
        print(f"\nerror: {what}, so these timings compare different computations; nothing "
              f"recorded:\n  " + "\n  ".join(mismatches), file=sys.stderr)
        return 1
    if not no_csv:
        print(f"\nrecorded in {append_csv(subject, rows)}")
    return 0


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


SMOKE_HELP = ("tiny sizes and one timed run, recording nothing: checks that the script and its "
              "checks run here (tests/test_benchmarks.py); its timings mean nothing")


def add_smoke_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--smoke (SMOKE_HELP), for every benchmark script."""
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    return parser


def parse_benchmark_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """parser.parse_args(argv); --smoke implies --no-csv (where the script has it)."""
    args = parser.parse_args(argv)
    if getattr(args, "smoke", False):
        args.no_csv = True
    return args


def benchmark_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """The options every benchmark shares: --device, --quick, --smoke, --repeats, --no-csv."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_smoke_option(parser)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-csv", action="store_true", help="print only, record nothing")
    return parser


@torch.no_grad()
def for_each_spike_step(model, images, add: Callable[[torch.Tensor], None]) -> None:
    """model(images), calling add(spikes [B, ...]) for every snnzoo LIF output at every
    timestep, as a search score sees them."""
    from snnzoo.layers import LIF

    def hook(lif, spikes, multistep):
        for spikes_t in (spikes if multistep else (spikes,)):
            add(spikes_t)

    handles = [m.register_spike_hook(hook) for m in model.modules() if isinstance(m, LIF)]
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()
