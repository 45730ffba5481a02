"""Benchmark of SNASNet's training-free score: accumulating the Hamming spike kernel K.

The contenders score the same spikes (B rows, N neurons, several layer-timesteps) in the same
run; median time and peak memory are reported, and the scores are checked to agree (rtol 1e-6):
  (a) numpy path       the authors' hook: float32 torch ops on the device per layer, then
                       .cpu().numpy() added to a float64 numpy K; numpy slogdet at the end
  (b) snnzoo auto      HammingKernelScorer(backend="auto"): K stays on the device; spikes added
                       with binary=True, as snnzoo.search.score adds its LIF outputs
  (c) snnzoo triton    the fused Triton kernel (CUDA only; the CPU interpreter is not a speed)

    python benchmarks/scorer.py [--device cuda] [--quick] [--no-csv]

Results are appended to benchmarks/results/scorer.csv; a markdown table is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (benchmark_parser, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, peak_memory_mb, record_unless_mismatched, time_it,
                    versions)

from snnzoo.kernels.spike_kernel import HammingKernelScorer, hamming_kernel_reference  # noqa: E402

BATCH_SIZE = 256  # SNASNet's search batch
LAYER_OUTPUTS = 10  # layer-timesteps added per score
NEURON_COUNTS = {"full": (32768, 131072), "quick": (4096, 16384), "smoke": (1000,)}


def numpy_path(outputs) -> float:
    kernel = np.zeros((BATCH_SIZE, BATCH_SIZE))
    for spikes in outputs:
        kernel = kernel + hamming_kernel_reference(spikes).cpu().numpy()
    return float(np.linalg.slogdet(kernel / len(outputs))[1])


def snnzoo_path(backend):
    def score(outputs) -> float:
        scorer = HammingKernelScorer(backend)
        for spikes in outputs:
            scorer.add(spikes, binary=True)
        return scorer.score()
    return score


def contenders(device):
    found = {"(a) numpy path": numpy_path, "(b) snnzoo auto": snnzoo_path("auto")}
    if device.type == "cuda":
        found["(c) snnzoo triton"] = snnzoo_path("triton")
    return found


def layer_outputs(neuron_count, device, seed=0):
    """LAYER_OUTPUTS float32 spike maps [B, N] whose rows fire at rates in (0.05, 0.45)."""
    generator = torch.Generator(device).manual_seed(seed)
    outputs = []
    for _ in range(LAYER_OUTPUTS):
        rates = torch.rand((BATCH_SIZE, 1), generator=generator, device=device) * 0.4 + 0.05
        uniform = torch.rand((BATCH_SIZE, neuron_count), generator=generator, device=device)
        outputs.append((uniform < rates).float())
    return outputs


def main(argv=None) -> int:
    parser = benchmark_parser(__doc__, "small N only, fewer repeats")
    args = parse_benchmark_args(parser, argv)
    device = torch.device(args.device)
    neuron_counts = NEURON_COUNTS["smoke" if args.smoke else "quick" if args.quick else "full"]
    repeats = 1 if args.smoke else args.repeats or (5 if args.quick else 15)
    warmup = 1 if args.smoke else 2
    found = contenders(device)
    rows, table, mismatches = [], [], []
    for neuron_count in neuron_counts:
        outputs = layer_outputs(neuron_count, device)
        baseline_ms = baseline_score = None
        for name, score in found.items():
            value = score(outputs)
            median, fastest, slowest = time_it(lambda: score(outputs), device, warmup, repeats)
            peak = peak_memory_mb(lambda: score(outputs), device)
            if baseline_ms is None:
                baseline_ms, baseline_score = median, value
            # 1e-6 absolute: the same float32 terms, summed into float64 K in another order
            agrees = abs(value - baseline_score) <= 1e-6
            if not agrees:
                mismatches.append(f"N={neuron_count} {name}: {value!r} vs {baseline_score!r}")
            rows.append(dict(device=device_name(device), versions=versions(),
                             batch_size=BATCH_SIZE, neurons=neuron_count,
                             layer_outputs=LAYER_OUTPUTS, contender=name,
                             median_ms=f"{median:.3f}", min_ms=f"{fastest:.3f}",
                             max_ms=f"{slowest:.3f}", peak_mb=f"{peak:.1f}",
                             speedup_vs_a=f"{baseline_ms / median:.2f}",
                             score=f"{value:.10g}", agrees_with_a=agrees))
            table.append([f"{BATCH_SIZE} x {neuron_count}", name,
                          f"{median:.2f} ({fastest:.2f}-{slowest:.2f})",
                          f"{baseline_ms / median:.2f}x", f"{peak:.0f}", f"{value:.8g}",
                          "yes" if agrees else "**no**"])
            print(f"N={neuron_count:7d} {name:20s} {median:9.2f} ms  peak {peak:7.1f} MiB  "
                  f"score {value:.10g}",
                  file=sys.stderr)
        del outputs
    print(f"\nSNASNet score of {LAYER_OUTPUTS} layer-timesteps on {device_name(device)} "
          f"({versions()}), median of {repeats} after {warmup} warm-up runs (min-max):\n")
    print(markdown_table(["B x N", "contender", "ms", "speed vs (a)", "peak MiB", "score",
                          "agrees"], table))
    return record_unless_mismatched("scorer", rows, mismatches, args.no_csv,
                                    "the scores differ (atol 1e-6)")


if __name__ == "__main__":
    sys.exit(main())
