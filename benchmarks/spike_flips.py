"""How far float32 rounding moves the spikes of two contenders that compute the same network.

Runs two of benchmarks/models.py's contenders (equal weights, same batch) in eval mode with
every layer's sequence run all T steps at once, records every LIF output through spike hooks,
and reports the first output that differs, how many spikes differ in all, and the largest
logits difference. The models benchmark cites this for contenders whose float32 arithmetic
differs by design (REROUNDED there): their float64 results equal the authors' exactly.

    python benchmarks/spike_flips.py [--width 128] [--batch-size 8] [--threads 2]

The markdown printed is also written to benchmarks/results/spike_flips_<date>.md.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, add_smoke_option, device_name,  # noqa: E402
                    parse_benchmark_args, versions)
from models import FUSED, build_contenders  # noqa: E402

from snnzoo.layers import LIF  # noqa: E402

REFERENCE = "(d) snnzoo channels_last"


def spikes_and_logits(model, images):
    model.eval().set_by_step(False)  # each neuron's whole sequence is one output
    recorded = []
    handles = [module.register_spike_hook(lambda lif, s, multistep: recorded.append(s.clone()))
               for module in model.modules() if isinstance(module, LIF)]
    try:
        with torch.no_grad():
            logits = model(images)
    finally:
        for handle in handles:
            handle.remove()
    return recorded, logits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="snasnet_cifar100")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--other", default=FUSED, help="the contender compared with (d)")
    parser.add_argument("--threads", type=int, default=2)
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    if args.smoke:
        args.width, args.batch_size = 4, 2
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    found, _, _ = build_contenders(args.model, args.width, device)
    size = found[REFERENCE].pretrained_cfg["input_size"][-1]
    images = torch.randn(args.batch_size, 3, size, size,
                         generator=torch.Generator().manual_seed(3))  # the models benchmark's
    ours, ours_logits = spikes_and_logits(found[REFERENCE], images)
    other, other_logits = spikes_and_logits(found[args.other], images)
    if len(ours) != len(other):
        sys.exit(f"the two contenders have {len(ours)} and {len(other)} neuron outputs")
    differing = [int((a != b).sum()) for a, b in zip(ours, other)]
    first = next((k for k, count in enumerate(differing) if count), None)
    total = sum(a.numel() for a in ours)
    largest = (ours_logits - other_logits).abs().max().item()
    text = (f"{args.model} at width {args.width}, batch {args.batch_size}, eval mode, float32, on "
            f"{device_name(device)} ({versions()}): {REFERENCE} against {args.other}.\n\n"
            f"- neuron outputs (a LIF's whole sequence each): {len(ours)}; spikes: {total:,}\n"
            f"- first output that differs: "
            + ("none" if first is None else f"#{first}, in {differing[first]} spikes") + "\n"
            f"- spikes that differ in all: {sum(differing):,} ({sum(differing) / total:.2%})\n"
            f"- largest |logits difference|: {largest:.3g}\n")
    print(text)
    if args.smoke:
        return 0
    stamp = datetime.date.today().isoformat()
    path = RESULTS_DIR / f"spike_flips_{stamp}.md"
    with open(path, "a") as handle:
        handle.write(text + "\n")
    print(f"recorded in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
