"""Running sequences step by step against all T steps at once: the choice behind set_by_step.

On the CPU, snnzoo runs forward cells, the transition and the final BN + LIF one timestep at a
time through all their layers (SNASNet.set_by_step(None) picks that by device); on CUDA each
layer runs all T steps at once. This script measures the two ways on the same model in turns
(a, b, a, b, ...), checks that they compute the same thing, and reports the time of "by step"
over "all at once" (below 1: stepping is faster):
  - search scoring (snnzoo.search.score, train mode) of the search benchmark's quick
    candidates: snasnet_cifar10 at width 64, batch 32, T=5, channels_last, backward and
    forward cells;
  - snasnet_cifar100 inference and training (forward+backward) at width 32 and 128, batch 8,
    channels_last.
The scores must be equal, and the logits to 1e-5 (both ways run the same operations; only the
convolution's batch differs, T x B images against B).

    python benchmarks/by_step.py [--quick] [--repeats 5] [--threads 1] [--no-csv]

Results are appended to benchmarks/results/by_step.csv; a markdown table is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (benchmark_parser, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, record_unless_mismatched, time_in_turns, versions)

import snnzoo  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet  # noqa: E402
from snnzoo.search import sample_genotypes, score  # noqa: E402

WAYS = {"by step": True, "all at once": False}


def search_cases(cell: str, candidates: int, width: int = 64, batch_size: int = 32):
    """(label, run(by_step) -> score) for the search benchmark's quick candidates."""
    base = dict(MODEL_ARGS["snasnet_cifar10"], timesteps=5, cell=cell, width=width,
                classifier_width=4 * width)
    base.pop("genotype")
    images = torch.randn(batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for genotype in sample_genotypes(cell, candidates, seed=1):
        torch.manual_seed(0)
        model = SNASNet(genotype=str(genotype), **base).to(memory_format=torch.channels_last)

        def run(by_step, model=model):
            model.set_by_step(by_step)
            return score(model, images)
        yield f"search, {cell} cell {genotype}", run


def model_cases(width: int, modes, batch_size: int = 8):
    torch.manual_seed(0)
    model = snnzoo.create_model("snasnet_cifar100", width=width)
    model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(batch_size, 3, 32, 32, generator=generator)
    labels = torch.randint(100, (batch_size,), generator=generator)
    for mode in modes:
        def run(by_step, mode=mode):
            model.set_by_step(by_step)
            if mode == "inference":
                model.eval()
                with torch.no_grad():
                    return model(images)
            model.train()
            model.zero_grad(set_to_none=True)
            torch.manual_seed(5)  # one dropout mask for both ways
            logits = model(images)
            F.cross_entropy(logits, labels).backward()
            return logits.detach()
        yield f"snasnet_cifar100 width {width}, {mode}", run


def same(a, b) -> bool:
    if isinstance(a, float):
        return a == b or abs(a - b) <= 1e-9 * abs(b)
    return bool((a - b).abs().max() <= 1e-5)


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, "one candidate per cell type, width 32 only")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    args = parse_benchmark_args(parser, argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    if args.device != "cpu":
        print("by_step matters on the CPU only; measuring there", file=sys.stderr)
    repeats = 1 if args.smoke else args.repeats or (3 if args.quick else 5)
    candidates = 1 if args.quick or args.smoke else 3
    sizes = dict(width=8, batch_size=4) if args.smoke else {}
    cases = [*search_cases("backward", candidates, **sizes),
             *search_cases("forward", candidates, **sizes),
             *model_cases(sizes.get("width", 32), ("inference", "training"),
                          sizes.get("batch_size", 8))]
    if not (args.quick or args.smoke):
        cases += [*model_cases(128, ("inference", "training"))]
    rows, table, mismatches = [], [], []
    for label, run in cases:
        results = {way: run(by_step) for way, by_step in WAYS.items()}  # also the warm-up
        if not same(results["by step"], results["all at once"]):
            mismatches.append(label)
        timings = time_in_turns({way: (lambda by_step=by_step, run=run: run(by_step))
                                 for way, by_step in WAYS.items()}, device, 1, repeats)
        stepped, whole = timings["by step"][0], timings["all at once"][0]
        print(f"  {label}: by step {stepped:.0f} ms, all at once {whole:.0f} ms", file=sys.stderr)
        rows.append(dict(device=device_name(device), versions=versions(), case=label,
                         by_step_ms=f"{stepped:.1f}", all_at_once_ms=f"{whole:.1f}",
                         ratio=f"{stepped / whole:.3f}"))
        table.append([label, f"{stepped:.0f}", f"{whole:.0f}", f"{stepped / whole:.2f}"])
    print(f"\nBy step against all T steps at once on {device_name(device)} ({versions()}), "
          f"median of {repeats} in turns:\n")
    print(markdown_table(["case", "by step, ms", "all at once, ms", "by step / all at once"],
                         table))
    return record_unless_mismatched("by_step", rows, mismatches, args.no_csv,
                                    "the two ways compute different results")


if __name__ == "__main__":
    sys.exit(main())
