"""Benchmark of the multi-timestep LIF neuron: forward, backward and both, time and memory.

Contenders, measured in the same run on the same input:
  (a) eager loop        the per-timestep PyTorch loop with an autograd surrogate (the
                        snnzoo reference; how the SNASNet code and SpikingJelly's torch path run)
  (b) compile(loop)     torch.compile of (a)
  (c) snnzoo auto       what LIF(backend="auto") runs on this device
  (d) snnzoo triton     the Triton kernels (CUDA only; the CPU interpreter is not a speed)
  (e) spikingjelly      SpikingJelly's multi-step LIFNode, if it is installed

    python benchmarks/lif.py [--device cuda] [--quick]

Results are appended to benchmarks/results/lif.csv; a markdown table is printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (append_csv, benchmark_parser, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, peak_memory_mb, time_it, versions)

from snnzoo.kernels import LIFParams, lif_multistep, lif_multistep_reference  # noqa: E402

PARAMS = LIFParams()  # SNASNet's neuron: tau 4/3, threshold 1, hard reset to 0, atan(alpha 2)
SIZES = {"small": (5, 32, 128, 16, 16), "large": (5, 64, 256, 32, 32)}
SMOKE_SIZES = {"smoke": (3, 2, 4, 5, 5)}
# fp32 bytes per element that the fused kernels must move at the least: the forward reads x
# and writes spikes; the backward reads x (h is recomputed from it) and dL/ds, writes dL/dx.
BYTES_PER_ELEMENT = {"forward": 8, "backward": 12, "forward+backward": 20}


def contenders(device):
    found = {"(a) eager loop": lambda x: lif_multistep_reference(x, PARAMS)}
    found["(b) compile(loop)"] = torch.compile(lambda x: lif_multistep_reference(x, PARAMS))
    found["(c) snnzoo auto"] = lambda x: lif_multistep(x, PARAMS, "auto")
    if device.type == "cuda":
        found["(d) snnzoo triton"] = lambda x: lif_multistep(x, PARAMS, "triton")
    try:
        found[f"(e) spikingjelly {_spikingjelly_version()}"] = _spikingjelly_lif(device)
    except Exception as error:  # not installed, or its backend is unavailable here
        print(f"(e) spikingjelly left out: {type(error).__name__}: {error}", file=sys.stderr)
    return found


def _spikingjelly_version() -> str:
    from importlib.metadata import version
    return version("spikingjelly")


def _spikingjelly_lif(device):
    """SpikingJelly's multi-step LIFNode with SNASNet's settings, on its fastest path for the
    device (SpikingJelly < 2 takes backend="cupy"; 2.x chooses its own kernels)."""
    from spikingjelly.activation_based import neuron, surrogate
    settings = dict(tau=PARAMS.tau, v_threshold=PARAMS.v_threshold, v_reset=PARAMS.v_reset,
                    detach_reset=True, surrogate_function=surrogate.ATan(), step_mode="m")
    try:
        node = neuron.LIFNode(**settings, backend="cupy" if device.type == "cuda" else "torch")
    except TypeError:
        node = neuron.LIFNode(**settings)

    def spikingjelly_lif(x):
        node.reset()
        return node(x)

    x = torch.randn(5, 2, 64, device=device, requires_grad=True)  # fails here, not mid-run
    expected = lif_multistep_reference(x, PARAMS)
    assert torch.equal(spikingjelly_lif(x), expected), "SpikingJelly's spikes differ from ours"
    return spikingjelly_lif


def measure(function, shape, device, mode, warmup, repeats):
    x = torch.randn(shape, device=device) * 1.5 + 0.4
    grad = torch.randn(shape, device=device)
    state = {}

    def forward():
        state["out"] = function(x.detach().requires_grad_())

    def backward():
        state["out"].backward(grad)

    def full():
        forward()
        backward()

    if mode == "backward":  # time backward alone: each repeat gets a fresh forward graph
        times = []
        for _ in range(warmup):
            full()
        for _ in range(repeats):
            forward()
            times.append(time_it(backward, device, 0, 1)[0])
        times.sort()
        timing = (times[len(times) // 2], times[0], times[-1])
        forward()
        peak = peak_memory_mb(backward, device)
    else:
        run = forward if mode == "forward" else full
        timing = time_it(run, device, warmup, repeats)
        state.clear()
        peak = peak_memory_mb(run, device)
    state.clear()
    return timing, peak


def main(argv=None):
    parser = benchmark_parser(__doc__, "small size only, fewer repeats")
    args = parse_benchmark_args(parser, argv)
    device = torch.device(args.device)
    sizes = SMOKE_SIZES if args.smoke else {"small": SIZES["small"]} if args.quick else SIZES
    repeats = 1 if args.smoke else args.repeats or (5 if args.quick else 15)
    warmup = 1 if args.smoke else 3
    found = contenders(device)
    table, recorded = [], None
    for size_name, shape in sizes.items():
        rows = []  # recorded after each size, so that a run cut short keeps what it measured
        numel = torch.Size(shape).numel()
        for mode in ("forward", "backward", "forward+backward"):
            baseline = None
            for name, function in found.items():
                (median, fastest, slowest), peak = measure(function, shape, device, mode, warmup, repeats)
                if baseline is None:
                    baseline = (median, peak)
                bandwidth = BYTES_PER_ELEMENT[mode] * numel / (median * 1e-3) / 1e9
                rows.append(dict(device=device_name(device), versions=versions(), size=size_name,
                                 shape="x".join(map(str, shape)), mode=mode, contender=name,
                                 median_ms=f"{median:.3f}", min_ms=f"{fastest:.3f}",
                                 max_ms=f"{slowest:.3f}", peak_mb=f"{peak:.1f}",
                                 speedup_vs_a=f"{baseline[0] / median:.2f}",
                                 memory_vs_a=f"{peak / baseline[1]:.2f}" if baseline[1] else "",
                                 fused_bytes_gbps=f"{bandwidth:.1f}"))
                table.append([f"{size_name} {list(shape)}", mode, name,
                              f"{median:.2f} ({fastest:.2f}-{slowest:.2f})",
                              f"{baseline[0] / median:.2f}x", f"{peak:.0f}",
                              f"{peak / baseline[1]:.2f}" if baseline[1] else "-"])
                print(f"{size_name} {mode:17s} {name:24s} {median:9.2f} ms  peak {peak:8.1f} MiB",
                      file=sys.stderr)
        if not args.no_csv:
            recorded = append_csv("lif", rows)
    print(f"\nLIF neuron on {device_name(device)} ({versions()}), fp32, median of {repeats} "
          f"after {warmup} warm-up runs (min-max):\n")
    print(markdown_table(["size", "mode", "contender", "ms", "speed vs (a)", "peak MiB",
                          "memory vs (a)"], table))
    if recorded is not None:
        print(f"\nrecorded in {recorded}")


if __name__ == "__main__":
    main()
