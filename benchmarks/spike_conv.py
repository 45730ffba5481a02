"""Benchmark of the spike convolution: SNASNet's spike-input conv layers, alone and with their
eval BatchNorm, at float32 fidelity.

Contenders, measured in turns in the same run on the same spikes (0/1, float32, channels_last
as the models run on CUDA):
  (a) cuDNN float32     F.conv2d in float32 with TF32 off (cudnn and matmul), the float32
                        result ours must match; + F.batch_norm in eval mode for conv+bn
  (b) cuDNN bf16        the same under torch.autocast(bfloat16): the weights rounded to
                        bfloat16 (2^-9 relative each), the speed float32 fidelity gives up
  (c) snnzoo            spike_conv2d (Triton: three bfloat16 limbs of the float32 weight on
                        tensor cores, float32 accumulation; BatchNorm fused as scale/shift);
                        the limb split runs in every call

Whole models (inference, batch 8, T=5, channels_last, weights that make every layer spike):
snasnet_cifar100 and snasnet_cifar10 with model.set_precision "fp32" (cuDNN, TF32 off),
"bf16" (autocast) and "bf16x3" (every convolution of spikes through the kernel); each row
reports the time, the ratio to fp32, the largest |logits difference| from fp32 and whether the
predictions agree (bf16x3 may differ from fp32 only where a membrane lies within rounding of
the threshold).

Layers: snasnet_cifar100 (width 128: cells at 128 channels 32x32 and 256 channels 16x16, the
transition 128 -> 256 at 32x32) and snasnet_cifar10 (width 256: 256 and 512 channels), 3x3 and
1x1 edges, for T*B = 5*8 and 5*32 images. Each row reports the median time (min-max), the
ratio of (a)'s time to it, and the error against the float64 result: max |y - y64| / max |y64|
over the layer. (c) must stay within 1e-5 of it, else nothing is recorded.

    python benchmarks/spike_conv.py [--device cuda] [--quick] [--no-csv]
    TRITON_INTERPRET=1 python benchmarks/spike_conv.py --smoke     # on a CPU: runs, times nothing

Results are appended to benchmarks/results/spike_conv.csv; a markdown table is printed.
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
from snnzoo.kernels.spike_conv import spike_conv2d  # noqa: E402
from snnzoo.models.reference import excite  # noqa: E402

# name: (input channels, output channels, side, kernel)
LAYERS = {
    "cifar100 cell1 3x3": (128, 128, 32, 3),
    "cifar100 cell1 1x1": (128, 128, 32, 1),
    "cifar100 transition 3x3": (128, 256, 32, 3),
    "cifar100 cell2 3x3": (256, 256, 16, 3),
    "cifar10 cell1 3x3": (256, 256, 32, 3),
    "cifar10 transition 3x3": (256, 512, 32, 3),
    "cifar10 cell2 3x3": (512, 512, 16, 3),
}
IMAGES = (5 * 8, 5 * 32)  # T * B
QUICK_LAYERS = ("cifar100 cell1 3x3", "cifar10 cell2 3x3")
SMOKE_LAYERS = {"smoke 3x3": (20, 18, 6, 3), "smoke 1x1": (20, 18, 6, 1)}
SMOKE_IMAGES = (2,)
MAX_ERROR = 1e-5  # (c) against float64: float32 rounding is ~1e-7
MODELS = {"snasnet_cifar100": {}, "snasnet_cifar10": {}}
SMOKE_MODELS = {"snasnet_cifar100": dict(width=4, classifier_width=16)}
MODEL_BATCH, SMOKE_MODEL_BATCH = 8, 2
PRECISIONS = ("fp32", "bf16", "bf16x3")


def layer_inputs(images, channels, out_channels, side, kernel, device, seed=0):
    """Spikes [images, C, side, side] at a 20% rate (channels_last), a conv weight with
    PyTorch's default init, and an eval BatchNorm's running statistics and affine terms."""
    generator = torch.Generator().manual_seed(seed)
    spikes = (torch.rand(images, channels, side, side, generator=generator) < 0.2).float()
    bound = (channels * kernel * kernel) ** -0.5
    weight = torch.rand(out_channels, channels, kernel, kernel, generator=generator)
    weight = (weight * 2 - 1) * bound
    norm = dict(mean=torch.randn(out_channels, generator=generator) * 0.1,
                var=torch.rand(out_channels, generator=generator) + 0.5,
                weight=torch.randn(out_channels, generator=generator),
                bias=torch.randn(out_channels, generator=generator) * 0.1)
    move = dict(device=device)
    return (spikes.to(**move).contiguous(memory_format=torch.channels_last), weight.to(**move),
            {key: value.to(**move) for key, value in norm.items()})


def contenders(spikes, weight, norm, kernel, with_bn):
    padding = kernel // 2
    eps = 1e-5
    invstd = 1 / torch.sqrt(norm["var"] + eps)
    scale = invstd * norm["weight"]
    shift = norm["bias"] - norm["mean"] * scale

    def batch_norm(y):
        return F.batch_norm(y, norm["mean"], norm["var"], norm["weight"], norm["bias"], False,
                            0.0, eps) if with_bn else y

    def cudnn_float32():
        return batch_norm(F.conv2d(spikes, weight, padding=padding))

    def cudnn_bfloat16():
        with torch.autocast(spikes.device.type, dtype=torch.bfloat16):
            return batch_norm(F.conv2d(spikes, weight, padding=padding))

    def snnzoo():
        return spike_conv2d(spikes, weight, padding=padding, scale=scale if with_bn else None,
                            shift=shift if with_bn else None, backend="triton")

    def exact():
        y = F.conv2d(spikes.double(), weight.double(), padding=padding)
        if with_bn:
            y = F.batch_norm(y, norm["mean"].double(), norm["var"].double(),
                             norm["weight"].double(), norm["bias"].double(), False, 0.0, eps)
        return y

    return {"(a) cuDNN float32": cudnn_float32, "(b) cuDNN bf16 autocast": cudnn_bfloat16,
            "(c) snnzoo spike_conv2d": snnzoo}, exact


def model_rows(name, overrides, batch, device, warmup, repeats):
    """(CSV rows, table rows) of one model in every precision, timed in turns."""
    torch.manual_seed(0)
    model = excite(snnzoo.create_model(name, **overrides)).eval().to(device)
    model.to(memory_format=torch.channels_last)
    copies = {precision: snnzoo.create_model(name, **overrides).eval().to(device)
              for precision in PRECISIONS}
    for precision, copy in copies.items():
        copy.load_state_dict(model.state_dict())
        copy.to(memory_format=torch.channels_last).set_precision(precision)
    size = model.pretrained_cfg["input_size"]
    images = torch.randn(batch, *size, generator=torch.Generator().manual_seed(1)).to(device)

    def forward(copy):
        with torch.no_grad():
            return copy(images)

    logits = {precision: forward(copy) for precision, copy in copies.items()}
    timings = time_in_turns({p: (lambda c=c: forward(c)) for p, c in copies.items()}, device,
                            warmup, repeats)
    baseline = timings["fp32"][0]
    rows, table = [], []
    for precision, (median, fastest, slowest) in timings.items():
        difference = (logits[precision] - logits["fp32"]).abs().max().item()
        agree = bool(torch.equal(logits[precision].argmax(1), logits["fp32"].argmax(1)))
        rows.append(dict(device=device_name(device), versions=versions(), layer=f"model {name}",
                         images=batch, channels=overrides.get("width", ""), out_channels="",
                         side="", kernel="", mode="inference", contender=precision,
                         median_ms=f"{median:.4f}", min_ms=f"{fastest:.4f}",
                         max_ms=f"{slowest:.4f}", speedup_vs_a=f"{baseline / median:.2f}",
                         max_relative_error=f"{difference:.3g}"))
        table.append([f"{name} batch {batch}", precision,
                      f"{median:.3f} ({fastest:.3f}-{slowest:.3f})", f"{baseline / median:.2f}x",
                      f"{difference:.2g}", "yes" if agree else "no"])
    return rows, table


def max_relative_error(actual, exact) -> float:
    return ((actual.double() - exact).abs().max() / exact.abs().max()).item()


def main(argv=None):
    parser = benchmark_parser(__doc__, f"only {', '.join(QUICK_LAYERS)}, fewer repeats")
    args = parse_benchmark_args(parser, argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True  # cuDNN picks its fastest algorithm per shape
    layers = (SMOKE_LAYERS if args.smoke else
              {name: LAYERS[name] for name in QUICK_LAYERS} if args.quick else LAYERS)
    images_list = SMOKE_IMAGES if args.smoke else IMAGES
    repeats = 1 if args.smoke else args.repeats or (10 if args.quick else 30)
    warmup = 1 if args.smoke else 5
    rows, table, mismatches = [], [], []
    for name, (channels, out_channels, side, kernel) in layers.items():
        for images in images_list:
            spikes, weight, norm = layer_inputs(images, channels, out_channels, side, kernel,
                                                device)
            for mode in ("conv", "conv+bn"):
                runs, exact = contenders(spikes, weight, norm, kernel, mode == "conv+bn")
                exact_out = exact()
                errors = {contender: max_relative_error(run(), exact_out)
                          for contender, run in runs.items()}
                ours = errors["(c) snnzoo spike_conv2d"]
                if not ours <= MAX_ERROR:
                    mismatches.append(f"{name} x{images} {mode}: snnzoo's error {ours:.3g} > "
                                      f"{MAX_ERROR}")
                timings = time_in_turns(runs, device, warmup, repeats)
                baseline = timings["(a) cuDNN float32"][0]
                for contender, (median, fastest, slowest) in timings.items():
                    rows.append(dict(device=device_name(device), versions=versions(), layer=name,
                                     images=images, channels=channels, out_channels=out_channels,
                                     side=side, kernel=kernel, mode=mode, contender=contender,
                                     median_ms=f"{median:.4f}", min_ms=f"{fastest:.4f}",
                                     max_ms=f"{slowest:.4f}",
                                     speedup_vs_a=f"{baseline / median:.2f}",
                                     max_relative_error=f"{errors[contender]:.3g}"))
                    table.append([f"{name} x{images}", mode, contender,
                                  f"{median:.3f} ({fastest:.3f}-{slowest:.3f})",
                                  f"{baseline / median:.2f}x", f"{errors[contender]:.2g}"])
                print(f"{name} x{images} {mode}: " + ", ".join(
                    f"{contender} {timings[contender][0]:.3f} ms err {errors[contender]:.2g}"
                    for contender in runs), file=sys.stderr)
    models = SMOKE_MODELS if args.smoke else MODELS
    model_table = []
    for name, overrides in models.items():
        found, shown = model_rows(name, overrides, SMOKE_MODEL_BATCH if args.smoke else MODEL_BATCH,
                                  device, warmup, repeats)
        rows += found
        model_table += shown
    print(f"\nWhole models in inference on {device_name(device)}, by precision:\n")
    print(markdown_table(["model", "precision", "ms", "speed vs fp32",
                          "max logits difference from fp32", "same predictions"], model_table))
    print(f"\nSpike convolution on {device_name(device)} ({versions()}), float32 spikes "
          f"channels_last, median of {repeats} after {warmup} warm-up runs (min-max); error: "
          f"max |y - y64| / max |y64|:\n")
    print(markdown_table(["layer x images", "mode", "contender", "ms", "speed vs (a)",
                          "max rel. error"], table))
    return record_unless_mismatched("spike_conv", rows, mismatches, args.no_csv,
                                    "snnzoo's spike convolution lost float32 fidelity")


if __name__ == "__main__":
    sys.exit(main())
