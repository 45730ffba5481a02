"""What fresh memory costs on this CPU: the reason behind snnzoo.memory.keep_freed_memory().

Adds two float32 tensors [160, 128, 32, 32] (80 MiB each, channels_last: the size of the
search benchmark's transition output over all T steps) into a new tensor and into an existing
one, median of 20, in two child processes: one with malloc as it is, one after
keep_freed_memory() (which python -m snnzoo.search, train and validate call).

    python benchmarks/page_faults.py [--no-csv]

Results are appended to benchmarks/results/page_faults.csv; a markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_smoke_option, append_csv, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, time_it, versions)

SHAPE = (160, 128, 32, 32)
SMOKE_SHAPE = (2, 4, 8, 8)
REPEATS = 20


def measure(shape=SHAPE, repeats=REPEATS) -> dict:
    """Median ms of a + b into a new tensor and into an existing one, in this process."""
    torch.set_num_threads(1)
    a = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    b, out = torch.randn_like(a), torch.empty_like(a)
    cpu = torch.device("cpu")
    return {name: time_it(run, cpu, 1, repeats)[0]
            for name, run in (("new tensor", lambda: a + b),
                              ("existing tensor", lambda: torch.add(a, b, out=out)))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-csv", action="store_true")
    parser.add_argument("--child", choices=["as-is", "keep"], help=argparse.SUPPRESS)
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    smoke = ["--smoke"] if args.smoke else []
    if args.child:
        if args.child == "keep":
            from snnzoo.memory import keep_freed_memory
            if not keep_freed_memory():
                sys.exit("keep_freed_memory() did not take effect here")
        print(json.dumps(measure(SMOKE_SHAPE, 1) if args.smoke else measure()))
        return 0
    torch.set_num_threads(1)  # as the children: the device name says so
    found = {}
    for child in ("as-is", "keep"):
        done = subprocess.run([sys.executable, __file__, "--child", child, *smoke], capture_output=True,
                              text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        found[child] = json.loads(done.stdout.strip().splitlines()[-1])
    device = torch.device("cpu")
    labels = {"as-is": "malloc as it is", "keep": "after keep_freed_memory()"}
    table = [[labels[child], f"{found[child]['new tensor']:.1f}",
              f"{found[child]['existing tensor']:.1f}"] for child in found]
    shape, repeats = (SMOKE_SHAPE, 1) if args.smoke else (SHAPE, REPEATS)
    print(f"a + b of two {list(shape)} float32 tensors ({torch.Size(shape).numel() / 2**18:.3g} "
          f"MiB) on {device_name(device)} ({versions()}), median of {repeats} (ms):\n")
    print(markdown_table(["process", "into a new tensor", "into an existing tensor"], table))
    if not args.no_csv:
        rows = [dict(device=device_name(device), versions=versions(), process=labels[child],
                     new_tensor_ms=f"{found[child]['new tensor']:.2f}",
                     existing_tensor_ms=f"{found[child]['existing tensor']:.2f}")
                for child in found]
        print(f"\nrecorded in {append_csv('page_faults', rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
