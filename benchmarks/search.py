"""Candidates per second of snnzoo's search against the authors' procedure.

The baseline is a faithful reimplementation of the authors' find_best_neuroncell inner loop:
their per-timestep network (snnzoo.models.reference.AuthorsSNASNet, per-timestep autograd
LIF) with a forward hook on every LIF call that computes the layer's kernel in float32 and
adds it to a float64 numpy K (snnzoo.search.authors_score). snnzoo scores the same candidates
(same weights, same images) with its multi-step network and the fused scorer. Both scores
are checked equal in the same run. A third procedure, "snnzoo bf16", is snnzoo's under
`--precision bf16` (snnzoo.precision: the network's convolutions in bfloat16, the scorer's
counting exact): its scores round by design, so they are not checked; the largest relative
difference from the authors' is reported on its own. Like `python -m snnzoo.search`, the
process first calls snnzoo.memory.keep_freed_memory() (malloc keeps freed memory; every
procedure runs with it; --no-keep-freed-memory leaves malloc as it is).

Peak memory: the peak resident set size of a process of its own that scores the first
candidate with one procedure (common.peak_rss_mb, after one warm-up score).

    python benchmarks/search.py [--device cuda] [--width 0.25] [--candidates 6] [--quick]
    python benchmarks/search.py --width 1.0 --batch-size 32 --candidates 3   # full width
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_smoke_option, append_csv, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, peak_rss_mb, versions)

from snnzoo.convert import convert_state_dict  # noqa: E402
from snnzoo.data import first_batch, load_dataset  # noqa: E402
from snnzoo.memory import keep_freed_memory  # noqa: E402
from snnzoo.models.reference import AuthorsSNASNet  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet  # noqa: E402
from snnzoo.precision import precision_context  # noqa: E402
from snnzoo.search import authors_score, sample_genotypes, score  # noqa: E402
from snnzoo.search.run import channels_last_by_default  # noqa: E402


SCORE_RTOL = {"exact": 1e-6, "rounding": 1e-3}
"""Relative score difference that still counts as equal: "exact" where both networks round
alike (the CPU in the authors' NCHW layout: scores agree to about 1e-9), "rounding" where
their convolutions round differently (channels_last on the CPU; cuDNN at different batch
shapes on CUDA). The search scores in train mode, where BatchNorm normalises with the batch's
own statistics: a membrane within rounding of the threshold may spike in one network only,
and the batch statistics spread that to a few more spikes (up to 4e-5 relative in the tests'
small network; each run records its own difference). In float64 the scores agree in
every layout (tests/test_search.py checks that)."""
PROCEDURES = ("authors", "snnzoo", "snnzoo bf16")
CHECKED = ("snnzoo",)
"""The procedures whose scores must equal the authors' (SCORE_RTOL); bf16 rounds by design."""


def positive(kind):
    """An argparse type: a number of kind above 0, else an error naming the value."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} is not positive; give a number above 0")
        return value
    return parse


def candidate_networks(base: dict, genotype, index: int, device: torch.device,
                       channels_last: bool):
    """(the authors' network, snnzoo's) for one candidate, with equal weights."""
    torch.manual_seed(index)
    reference = AuthorsSNASNet(genotype=str(genotype), **base).to(device)
    ours = SNASNet(genotype=str(genotype), **base).to(device)
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                            ours.state_dict().keys()))
    if channels_last:
        ours.to(memory_format=torch.channels_last)
    return reference, ours


def procedure(name: str, reference, ours, images, device: torch.device):
    """run() -> the score of one procedure: the authors', snnzoo's, snnzoo's under bf16 (as
    python -m snnzoo.search --precision bf16 runs it)."""
    if name == "authors":
        return lambda: authors_score(reference, images)
    if name == "snnzoo":
        return lambda: score(ours, images)

    def bf16():
        with precision_context("bf16", device):
            return score(ours, images)
    return bf16


def search_images(base: dict, batch_size: int) -> torch.Tensor:
    """The images every candidate is scored on."""
    if base["in_chans"] == 1:  # Fashion-MNIST macro network: the embedded sample
        return first_batch(load_dataset("fashion-mnist-sample", "train"), batch_size, 0)[0]
    # no CIFAR here: normal noise of the input's shape (the timing does not depend on it)
    return torch.randn(batch_size, base["in_chans"], base["img_size"], base["img_size"],
                       generator=torch.Generator().manual_seed(0))


def procedure_run(name: str, base: dict, cell: str, device_type: str, channels_last: bool,
                  batch_size: int, keep_freed: bool):
    """run() of one procedure on the first candidate, in a process of its own (peak RSS),
    whose malloc keeps freed memory as the timing process's does (a setting per process)."""
    if keep_freed:
        keep_freed_memory()
    device = torch.device(device_type)
    genotype = next(iter(sample_genotypes(cell, 1, seed=1)))
    reference, ours = candidate_networks(base, genotype, 0, device, channels_last)
    if name == "authors":
        ours = None
    else:
        reference = None
    gc.collect()
    return procedure(name, reference, ours, search_images(base, batch_size).to(device), device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--base", default="snasnet_cifar10", help="macro network (entrypoint)")
    parser.add_argument("--width", type=positive(float), default=0.25,
                        help="width multiplier of the macro network (1.0: its own width)")
    parser.add_argument("--batch-size", type=positive(int), default=None,
                        help="images per candidate (default: 64; 32 with --quick)")
    parser.add_argument("--timesteps", type=positive(int), default=5)
    parser.add_argument("--candidates", type=positive(int), default=6)
    parser.add_argument("--cell", default="backward", choices=["forward", "backward"])
    parser.add_argument("--quick", action="store_true", help="3 candidates, batch 32")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="snnzoo's networks in channels_last, as python -m snnzoo.search runs "
                             "them (default: on the CPU, off on CUDA, the search's default)")
    parser.add_argument("--keep-freed-memory", action=argparse.BooleanOptionalAction,
                        default=True, help="as python -m snnzoo.search does (snnzoo.memory)")
    parser.add_argument("--no-csv", action="store_true")
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    if args.keep_freed_memory:
        keep_freed_memory()
    if args.channels_last is None:
        args.channels_last = channels_last_by_default(torch.device(args.device))
    if args.quick:
        args.candidates = 3
    args.batch_size = args.batch_size or (32 if args.quick else 64)
    if args.smoke:
        args.candidates, args.batch_size, args.width = 1, 4, 1 / 32
    device = torch.device(args.device)
    base = dict(MODEL_ARGS[args.base], timesteps=args.timesteps, cell=args.cell)
    base["width"] = max(1, round(base["width"] * args.width))
    base["classifier_width"] = max(1, round(base["classifier_width"] * args.width))
    base.pop("genotype")
    images = search_images(base, args.batch_size).to(device)
    times = {name: [] for name in PROCEDURES}
    exact_rounding = device.type == "cpu" and not args.channels_last
    largest_difference = {name: 0.0 for name in PROCEDURES}
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for index, genotype in enumerate(sample_genotypes(args.cell, args.candidates, seed=1)):
        reference, ours = candidate_networks(base, genotype, index, device, args.channels_last)
        runs = {name: procedure(name, reference, ours, images, device) for name in PROCEDURES}
        for run in runs.values():  # warm-up: compiles the CPU LIF path once per shape and
            run()                  # precision, sets up cuDNN for the baseline
        results = {}
        for name, run in runs.items():
            torch.manual_seed(100 + index)
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] = run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
        for name in PROCEDURES:
            difference = (abs(results["authors"] - results[name])
                          / max(1.0, abs(results["authors"])))
            largest_difference[name] = max(largest_difference[name], difference)
            if name in CHECKED and difference > SCORE_RTOL["exact" if exact_rounding else "rounding"]:
                raise SystemExit(f"scores differ for {genotype}: authors {results['authors']!r}, "
                                 f"{name} {results[name]!r}")
        print(f"{genotype}  score {results['snnzoo']:.4f}  "
              + "  ".join(f"{name} {times[name][-1]:.2f} s" for name in PROCEDURES),
              file=sys.stderr)
    print("peak RSS of each procedure in a process of its own", file=sys.stderr)
    resident = {name: peak_rss_mb(procedure_run, name, base, args.cell, device.type,
                                  args.channels_last, args.batch_size, args.keep_freed_memory)
                for name in PROCEDURES}
    rate = {name: len(values) / sum(values) for name, values in times.items()}
    config = (f"{args.base} width x{args.width} ({base['width']} channels), batch "
              f"{args.batch_size}, T={args.timesteps}, {args.cell} cells"
              + (", snnzoo in channels_last" if args.channels_last else "")
              + (", malloc keeps freed memory" if args.keep_freed_memory else ""))
    rows = [[name, f"{statistics.median(times[name]):.3f}", f"{rate[name]:.3f}",
             f"{rate[name] / rate['authors']:.2f}x", f"{resident[name]:.0f}",
             f"{largest_difference[name]:.1e}" + ("" if name in CHECKED or name == "authors"
                                                  else " (not checked)")]
            for name in PROCEDURES]
    print(f"\nSearch scoring on {device_name(device)} ({versions()}); {config}; "
          f"{args.candidates} candidates, snnzoo's scores equal to the authors':\n")
    print(markdown_table(["procedure", "median s / candidate", "candidates / s", "vs authors",
                          "peak RSS MiB", "largest relative score difference"], rows))
    if not args.no_csv:
        path = append_csv("search", [dict(device=device_name(device), versions=versions(),
                                          config=config, candidates=args.candidates,
                                          procedure=name, median_s=f"{statistics.median(times[name]):.4f}",
                                          candidates_per_s=f"{rate[name]:.4f}",
                                          speedup=f"{rate[name] / rate['authors']:.3f}",
                                          largest_score_difference=f"{largest_difference[name]:.1e}",
                                          peak_rss_mb=f"{resident[name]:.0f}")
                                     for name in PROCEDURES])
        print(f"\nrecorded in {path}")


if __name__ == "__main__":
    main()
