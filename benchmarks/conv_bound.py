"""How much of a batch the convolutions take: the bound behind the models' and search's targets.

Two measurements, printed as markdown (the README's "out of reach" paragraphs cite them):
  1. single convolutions of SNASNet's shapes in NCHW and NHWC (channels_last): median ms of a
     forward on 0/1 inputs and the GFLOPS it reaches;
  2. torch.profiler of the quick models benchmark's network (snasnet_cifar100 at width 32,
     batch 8) in channels_last, inference and training, and of one search candidate (the
     search benchmark's quick configuration): the self time of convolutions and matrix
     products (forward and backward) against the whole step, next to the authors' network's
     whole step measured the same way.

    python benchmarks/conv_bound.py [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_smoke_option, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, versions)
from models import build_contenders, make_run  # noqa: E402

from snnzoo.convert import convert_state_dict  # noqa: E402
from snnzoo.models.reference import AuthorsSNASNet  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet  # noqa: E402
from snnzoo.search import authors_score, sample_genotypes, score  # noqa: E402

CONV_SHAPES = [(32, 32, 8), (64, 16, 8), (64, 32, 32), (128, 16, 32)]  # (channels, side, batch)
SMOKE_CONV_SHAPES = [(4, 8, 2)]
DENSE_OPS = ("convolution", "aten::mm", "aten::addmm")  # convolutions and Linear layers


def time_ms(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def conv_table(shapes, repeats: int) -> list[list]:
    rows = []
    with torch.no_grad():
        for channels, side, batch in shapes:
            weight = torch.randn(channels, channels, 3, 3)
            x = (torch.rand(batch, channels, side, side) < 0.2).float()
            flops = 2 * batch * side * side * channels * channels * 9
            cells = [f"{channels} ch, {side}x{side}, batch {batch}"]
            for layout in (torch.contiguous_format, torch.channels_last):
                xl, wl = x.contiguous(memory_format=layout), weight.contiguous(memory_format=layout)
                ms = time_ms(lambda: F.conv2d(xl, wl, padding=1), repeats)
                cells.append(f"{ms:.2f} ms ({flops / ms / 1e6:.0f} GFLOPS)")
            rows.append(cells)
    return rows


def profile_ms(run) -> tuple[float, float]:
    """(whole step, dense ops' self time) in ms, from the profiler, after a warm-up."""
    run()
    run()
    with torch.profiler.profile() as profiler:
        run()
    events = profiler.key_averages()
    dense = sum(e.self_cpu_time_total for e in events if any(op in e.key for op in DENSE_OPS))
    whole = sum(e.self_cpu_time_total for e in events)
    return whole / 1e3, dense / 1e3


def model_rows(width: int = 32, batch_size: int = 8) -> list[list]:
    found, model_args, _ = build_contenders("snasnet_cifar100", width, torch.device("cpu"))
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(model_args["num_classes"], (batch_size,), generator=generator)
    rows = []
    for mode in ("inference", "training"):
        authors, _ = profile_ms(make_run(found["(a) authors eager"], images, labels, mode))
        ours, dense = profile_ms(make_run(found["(d) snnzoo channels_last"], images, labels, mode))
        rows.append([f"models, {mode}", f"{authors:.0f} ms", f"{ours:.0f} ms", f"{dense:.0f} ms",
                     f"{authors / 2:.0f} ms"])
    return rows


def search_row(width: int = 64, batch_size: int = 32) -> list:
    base = dict(MODEL_ARGS["snasnet_cifar10"], timesteps=5, cell="backward", width=width,
                classifier_width=4 * width)
    base.pop("genotype")
    genotype = str(list(sample_genotypes("backward", 3, seed=1))[2])
    torch.manual_seed(0)
    reference = AuthorsSNASNet(genotype=genotype, **base)
    ours = SNASNet(genotype=genotype, **base)
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                            ours.state_dict().keys()))
    ours.to(memory_format=torch.channels_last)
    images = torch.randn(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    authors, _ = profile_ms(lambda: authors_score(reference, images))
    whole, dense = profile_ms(lambda: score(ours, images))
    return [f"search, one candidate ({genotype})", f"{authors:.0f} ms", f"{whole:.0f} ms",
            f"{dense:.0f} ms", f"{authors / 3:.0f} ms (3x)"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    repeats = 1 if args.smoke else 5
    sizes = dict(width=4, batch_size=2) if args.smoke else {}
    print(f"Convolutions on {device_name(device)} ({versions()}), 3x3, padding 1, forward on "
          f"0/1 inputs, median of {repeats}:\n")
    print(markdown_table(["shape", "NCHW", "NHWC (channels_last)"],
                         conv_table(SMOKE_CONV_SHAPES if args.smoke else CONV_SHAPES, repeats)))
    print("\nProfiled steps (torch.profiler self CPU time; snnzoo in channels_last; the "
          "authors' network step by step):\n")
    print(markdown_table(["step", "authors, whole step", "snnzoo, whole step",
                          "snnzoo, convolutions and matmuls alone", "target (half the authors')"],
                         [*model_rows(**sizes), search_row(**sizes)]))


if __name__ == "__main__":
    main()
