"""What the model's check for NaN and infinite inputs costs: inference of snasnet_fmnist with
model.check_finite on (the default) and off, in turns, in the same run.

    python benchmarks/check_finite.py [--batch-size 64] [--repeats 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (append_csv, benchmark_parser, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, time_in_turns, versions)

import snnzoo  # noqa: E402


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, "the same, fewer repeats")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parse_benchmark_args(parser, argv)
    device = torch.device(args.device)
    batch, width = (4, 4) if args.smoke else (args.batch_size, 64)
    repeats = 1 if args.smoke else args.repeats or (3 if args.quick else 7)
    model = snnzoo.create_model("snasnet_fmnist", width=width).to(device).eval()
    images = torch.randn(batch, 1, 28, 28, device=device)

    def forward(check: bool):
        def run():
            model.check_finite = check
            with torch.no_grad():
                model(images)
        return run

    timings = time_in_turns({"check off": forward(False), "check on": forward(True)}, device,
                            warmup=1, repeats=repeats)
    off, on = timings["check off"][0], timings["check on"][0]
    table = markdown_table(["batch", "check off ms", "check on ms", "cost"],
                           [[batch, f"{off:.1f}", f"{on:.1f}", f"{(on / off - 1) * 100:+.2f}%"]])
    print(f"\nsnasnet_fmnist inference on {device_name(device)} ({versions()}), median of "
          f"{repeats}:\n\n{table}")
    if not args.no_csv:
        append_csv("check_finite", [dict(device=device_name(device), versions=versions(),
                                         batch_size=batch, check_off_ms=f"{off:.3f}",
                                         check_on_ms=f"{on:.3f}",
                                         cost_percent=f"{(on / off - 1) * 100:.3f}")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
