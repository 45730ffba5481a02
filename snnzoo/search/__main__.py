"""python -m snnzoo.search: training-free search for SNASNet cells.

Samples cells of 4 nodes with forward and (for backward cells) temporal feedback edges,
scores each untrained candidate by how differently it spikes for different images (the
sparsity-aware Hamming kernel, score = log|det K|), keeps the best, and emits it as a model
variant that snnzoo.create_model(NAME) builds in later processes.

    python -m snnzoo.search --num-search 50 --width 0.5 --out runs/search
    python -m snnzoo.search --dataset cifar10 --data-dir ~/data --cell backward --out runs/c10
    torchrun --nproc-per-node 4 -m snnzoo.search --dataset cifar100 --data-dir ~/data ...

OUT gets candidates.jsonl (one line per scored candidate, flushed as it is written: stop the
search at any time and continue it with --resume), search.json (the settings), best.json,
scores.png (histogram), cell.png (the winner) and the variant's folder, which is also copied
into the variants directory. Every option is checked before anything is written. A variant
folder that another search wrote (same --name) is never replaced: choose another --name or
delete that folder. If every candidate scores -inf, nothing is registered.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from snnzoo._options import add_data_options, add_debug_option, add_device_option, cli_errors
from snnzoo.precision import add_precision_option


def parse_args(argv=None) -> argparse.Namespace:
    """The options, checked: a run never starts with one it would fail on later."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(parser)
    parser.add_argument("--cell", choices=["forward", "backward"], default="backward",
                        help="backward cells may have temporal feedback edges (default: backward)")
    parser.add_argument("--num-search", type=int, default=5000,
                        help="cells to sample (default: 5000)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="images per score, at least 2 (default: 256)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="batches averaged per candidate (default: 2)")
    parser.add_argument("--timesteps", type=int, default=5, help="T (default: 5)")
    parser.add_argument("--width", type=float, default=1.0,
                        help="multiplies the model's channel widths, e.g. 0.25 on a CPU "
                             "(default: 1)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds every candidate's weights and images (default: 0)")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                        help="score on training images with the data set's training transform "
                             "(random crop, and flips for the colour sets), seeded, as the "
                             "authors do (default: on)")
    parser.add_argument("--every-draw", action="store_true",
                        help="score every one of the --num-search draws, a cell drawn twice "
                             "twice, as the authors do (default: each distinct cell once)")
    parser.add_argument("--carry-state", action="store_true",
                        help="start each of a candidate's --repeat batches from the membranes "
                             "the previous one left, as the authors' search does (it never "
                             "resets its neurons; slower: it runs their per-timestep network); "
                             "default: each batch from rest")
    add_device_option(parser)
    add_precision_option(parser)
    add_debug_option(parser)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="run the candidates in the channels_last memory format (default: "
                             "a resumed run keeps its own; a new run uses it on the CPU, where "
                             "its convolutions are faster, and not on CUDA)")
    parser.add_argument("--out", type=Path, default=Path("runs/search"),
                        help="the search's folder (default: runs/search)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the search in --out (or start one there if it holds none)")
    parser.add_argument("--top-k", type=int, default=5,
                        help="rows of the summary table (default: 5)")
    parser.add_argument("--name", help="variant name: 'snasnet_' then letters, digits and "
                                       "underscores (default from data set, cell and seed)")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """Refuse, with parser.error, values that no search can run with; fill in --name."""
    for option in ("num_search", "repeat", "timesteps", "top_k"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.batch_size < 2:
        parser.error(f"--batch-size {args.batch_size} must be at least 2 (the kernel compares "
                     f"images)")
    if not math.isfinite(args.width) or args.width <= 0:
        parser.error(f"--width {args.width} must be a positive number, e.g. 0.25")
    from snnzoo.search.run import check_output_layout, check_seed, default_name
    from snnzoo.models.variants import check_variant_name
    problem = check_seed(args.seed, args.num_search, args.repeat)
    if problem:
        parser.error(problem)
    if args.name is None:
        args.name = default_name(args)
    try:
        check_variant_name(args.name)
    except ValueError as error:
        parser.error(f"--name: {error}")
    problem = check_output_layout(args.out, args.name)
    if problem:
        parser.error(problem)


def main(argv=None) -> int:
    from snnzoo.memory import keep_freed_memory
    from snnzoo.search.run import run_search
    args = parse_args(argv)
    keep_freed_memory()  # candidates' large activations reuse memory (snnzoo.memory)
    with cli_errors(args.debug):
        run_search(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
