"""Candidates per second of snnzoo's search against the authors' procedure.

The baseline is a faithful reimplementation of the authors' find_best_neuroncell inner loop:
their per-timestep network (snnzoo.models.reference.AuthorsSNASNet, per-timestep autograd
LIF) with a forward hook on every LIF call that computes the layer's kernel in float32 and
adds it to a float64 numpy K (snnzoo.search.authors_score). snnzoo scores the same candidates
(same weights, same images) with its multi-step network and the fused scorer. Both scores
are checked equal in the same run. Like `python -m snnzoo.search`, the process first calls
snnzoo.memory.keep_freed_memory() (malloc keeps freed memory; both procedures run with it;
--no-keep-freed-memory leaves malloc as it is).

    python benchmarks/search.py [--device cuda] [--width 0.25] [--candidates 6] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_smoke_option, append_csv, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, versions)

from snnzoo.convert import convert_state_dict  # noqa: E402
from snnzoo.data import first_batch, load_dataset  # noqa: E402
from snnzoo.memory import keep_freed_memory  # noqa: E402
from snnzoo.models.reference import AuthorsSNASNet  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet  # noqa: E402
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--base", default="snasnet_cifar10", help="macro network (entrypoint)")
    parser.add_argument("--width", type=float, default=0.25, help="width multiplier")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timesteps", type=int, default=5)
    parser.add_argument("--candidates", type=int, default=6)
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
        args.candidates, args.batch_size = 3, 32
    if args.smoke:
        args.candidates, args.batch_size, args.width = 1, 4, 1 / 32
    device = torch.device(args.device)
    base = dict(MODEL_ARGS[args.base], timesteps=args.timesteps, cell=args.cell)
    base["width"] = max(1, round(base["width"] * args.width))
    base["classifier_width"] = max(1, round(base["classifier_width"] * args.width))
    base.pop("genotype")
    if base["in_chans"] == 1:  # Fashion-MNIST macro network: the embedded sample
        images = first_batch(load_dataset("fashion-mnist-sample", "train"), args.batch_size, 0)[0]
    else:  # no CIFAR here: normal noise of the input's shape (the timing does not depend on it)
        images = torch.randn(args.batch_size, base["in_chans"], base["img_size"], base["img_size"],
                             generator=torch.Generator().manual_seed(0))
    images = images.to(device)
    times = {"authors": [], "snnzoo": []}
    exact_rounding = device.type == "cpu" and not args.channels_last
    largest_difference = 0.0
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    for index, genotype in enumerate(sample_genotypes(args.cell, args.candidates, seed=1)):
        torch.manual_seed(index)
        reference = AuthorsSNASNet(genotype=str(genotype), **base).to(device)
        ours = SNASNet(genotype=str(genotype), **base).to(device)
        ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                                ours.state_dict().keys()))
        if args.channels_last:
            ours.to(memory_format=torch.channels_last)
        score(ours, images)  # warm-up (compiles the CPU LIF path once per shape)
        authors_score(reference, images)  # and the same for the baseline (cuDNN set-up)
        results = {}
        for name, run in (("authors", lambda: authors_score(reference, images)),
                          ("snnzoo", lambda: score(ours, images))):
            torch.manual_seed(100 + index)
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            results[name] = run()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
        difference = abs(results["authors"] - results["snnzoo"]) / max(1.0, abs(results["authors"]))
        largest_difference = max(largest_difference, difference)
        if difference > SCORE_RTOL["exact" if exact_rounding else "rounding"]:
            raise SystemExit(f"scores differ for {genotype}: authors {results['authors']!r}, "
                             f"snnzoo {results['snnzoo']!r}")
        print(f"{genotype}  score {results['snnzoo']:.4f}  authors {times['authors'][-1]:.2f} s  "
              f"snnzoo {times['snnzoo'][-1]:.2f} s", file=sys.stderr)
    rate = {name: len(values) / sum(values) for name, values in times.items()}
    config = (f"{args.base} width x{args.width} ({base['width']} channels), batch "
              f"{args.batch_size}, T={args.timesteps}, {args.cell} cells"
              + (", snnzoo in channels_last" if args.channels_last else "")
              + (", malloc keeps freed memory" if args.keep_freed_memory else ""))
    rows = [[name, f"{statistics.median(times[name]):.3f}", f"{rate[name]:.3f}",
             f"{rate[name] / rate['authors']:.2f}x"] for name in times]
    print(f"\nSearch scoring on {device_name(device)} ({versions()}); {config}; "
          f"{args.candidates} candidates, scores equal (largest relative difference "
          f"{largest_difference:.1e}):\n")
    print(markdown_table(["procedure", "median s / candidate", "candidates / s", "vs authors"], rows))
    if not args.no_csv:
        path = append_csv("search", [dict(device=device_name(device), versions=versions(),
                                          config=config, candidates=args.candidates,
                                          procedure=name, median_s=f"{statistics.median(times[name]):.4f}",
                                          candidates_per_s=f"{rate[name]:.4f}",
                                          speedup=f"{rate[name] / rate['authors']:.3f}",
                                          largest_score_difference=f"{largest_difference:.1e}")
                                     for name in times])
        print(f"\nrecorded in {path}")


if __name__ == "__main__":
    main()
