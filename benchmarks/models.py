"""Benchmark of whole SNASNet models: images per second and peak memory, inference and training.

Contenders, with equal weights, on the same batch, measured in turns in the same run:
  (a) authors eager     AuthorsSNASNet: the authors' network step by step, per-timestep
                        autograd LIF (the faithful eager baseline)
  (b) snnzoo auto       snnzoo.create_model(name): multi-step layers, fused LIF
  (c) snnzoo triton     (b) with model.set_backend("triton") (CUDA only; the CPU interpreter
                        is not a speed)
  (d) snnzoo channels_last  (b) after model.to(memory_format=torch.channels_last): the same
                        network computing in the NHWC layout (the input stays NCHW; the stem's
                        convolution changes its layout)
  (e) snnzoo compiled   with --compile: torch.compile of (d) on the CPU, of (b) with
                        mode="reduce-overhead" (CUDA graphs) on CUDA; it compiles during the
                        checks and warm-up, not in the timed runs (its float64 check compiles
                        a float64 copy). Inductor then draws random numbers as eager mode does
                        (fallback_random), so that its dropout masks equal the others'
  (f) snnzoo fused      inference only: (d) after timm.utils.reparameterize_model, which
                        folds each convolution's BatchNorm into it (its running statistics are
                        constants in eval mode), and the transition's average pool into its
                        convolution (one 4x4 convolution of stride 2: 4/9 of the products);
                        equal to (d) up to float rounding
  (g) snnzoo compiled fused  with --compile, inference only: the fused model compiled as
                        (e) is: (f) on the CPU, (b) fused and compiled on CUDA
  (h) snnzoo bf16       (d) with model.set_precision("bf16"): convolutions and linear layers
                        in bfloat16 under torch.autocast, membranes and logits in float32
                        (snnzoo.precision)
  (i) snnzoo fused bf16  inference only: (f) with model.set_precision("bf16")
  (j) SpikingJelly 2.0  the second peer: SpikingJelly 2.0's SNASNet port
                        (spikingjelly.activation_based.model.snas_net, `pip install -e
                        ".[bench]"`), its neurons and dropout mask reset on every call as the
                        authors' training loop does (functional.reset_net). It has the authors'
                        module names, so it loads (a)'s state dict as it is: the same weights.
                        It builds the CIFAR-10, CIFAR-100 and Tiny ImageNet networks at their
                        own width only; elsewhere, or where spikingjelly is not installed, its
                        row is skipped with one printed line.

Modes: "inference" is eval mode under no_grad; "training" is train mode, forward, cross-entropy
and backward. Before timing, every contender is checked against (a) twice, with the RNG seeded
alike so that the dropout masks match:
  - as computed, in float64 with the reference neuron (set_backend("torch")): logits and
    parameter gradients of both modes must equal (a)'s to FLOAT64_ATOL. This checks the
    network: cells, feedback, BatchNorm per step, layouts. In float64 rounding cannot move a
    membrane across the threshold, so the two networks spike alike;
  - as timed, in float32 with the contender's own neuron: inference logits must equal (a)'s to
    LOGITS_ATOL, but for the contenders that round differently by design (REROUNDED: bf16
    rounds every layer's output to 8 significant bits) and the peers (PEERS), and so must
    (b)'s training-mode logits on the CPU. Other differences are reported, not enforced
    (see LOGITS_ATOL and REROUNDED).
(h) and (i) are checked in float64 as the network they are, computing in fp32; a peer's float64
difference is reported, not enforced: it is not snnzoo's network.
The fused neuron itself is checked spike for spike against the reference by tests/test_lif.py.
The weights are randomised first (BatchNorm statistics and affine, classifier Linear) so that
spikes reach the logits and the check means something; dense layers cost the same whatever the
weights. Convolutions run in fp32 (TF32 off), but for the bf16 contenders. On a CPU busy with
other work, --threads 1 steadies the timings.

Memory, two figures per contender and mode:
  - peak_mb: the peak of torch's allocations during one run, above what was allocated before
    it (CUDA's allocator counters; on the CPU, the profiler's allocation events);
  - peak_rss_mb: the peak resident set size of a process of its own that builds this
    contender alone and runs it (common.peak_rss_mb: after one warm-up run the kernel's
    high-water mark is reset and one more run is measured). It counts everything the process
    holds: the Python runtime and torch (as a fresh process has them), the weights, what
    compiling left and what malloc keeps. Measured in a separate process because RSS is
    per process: in the timing process the other contenders' leftovers would count too.

    python benchmarks/models.py [--device cuda] [--quick] [--models snasnet_cifar100]
                                [--width 32] [--batch-size 32] [--threads 1] [--no-csv]

Results are appended to benchmarks/results/models.csv, runs at every width to the same file; a
markdown table is printed. The exit status is 1 when a check fails (nothing is recorded then).
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import torch
import torch.nn.functional as F
from timm.utils import reparameterize_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (add_smoke_option, device_name, markdown_table,  # noqa: E402
                    parse_benchmark_args, peak_memory_mb, peak_rss_mb,
                    record_unless_mismatched, time_in_turns, versions)

import snnzoo  # noqa: E402
from snnzoo.convert import convert_state_dict  # noqa: E402
from snnzoo.models.genotype import parse_genotype  # noqa: E402
from snnzoo.models.reference import AuthorsSNASNet, excite  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS  # noqa: E402

MODELS = ("snasnet_cifar10", "snasnet_cifar100")
MODES = ("inference", "training")
BASELINE = "(a) authors eager"
LOGITS_ATOL = 1e-4
"""Largest |logits difference| from the baseline, in float32, that counts as the same result.

Enforced in inference but for REROUNDED, and in training mode for SAME_ROUNDING on the CPU.
In training mode BatchNorm normalises with the batch's own statistics, and one spike that
rounding moves across the threshold changes those statistics for every image, so the network
amplifies rounding: where the two networks' convolutions round differently (cuDNN at T x B
against B images, NHWC against NCHW, compiled graphs), the float32 training-mode logits
differ by up to about 1 (on the CPU, relative noise of 1e-5 on one convolution's output
changes the authors' own training-mode logits by 0.59). The float64 check shows that the
computation is the same."""
SAME_ROUNDING = "(b) snnzoo auto"
"""The contender whose float32 training-mode logits are enforced too, on the CPU: it runs
the authors' convolutions in their NCHW layout, which round alike at T x B and B images there
(1.2e-7 recorded), so that the check also covers the fused neuron inside a training step."""
FLOAT64_ATOL = 1e-9
"""Largest |logits difference| and |gradient difference| / max |gradient| in float64."""
QUICK_CPU_WIDTH = 32  # --quick on the CPU: a quarter of snasnet_cifar100's width of 128


CHANNELS_LAST = "(d) snnzoo channels_last"
COMPILED = "(e) snnzoo compiled"
FUSED = "(f) snnzoo fused"
COMPILED_FUSED = "(g) snnzoo compiled fused"
BF16 = "(h) snnzoo bf16"
FUSED_BF16 = "(i) snnzoo fused bf16"
SPIKINGJELLY = "(j) SpikingJelly 2.0"
INFERENCE_ONLY = (FUSED, COMPILED_FUSED, FUSED_BF16)
PEERS = (SPIKINGJELLY,)
"""Other people's networks: their differences from (a) are reported, never enforced."""
AUTHORS_LAYOUT = (SPIKINGJELLY,)
"""Contenders whose parameters have the authors' names (their gradients compare as they are)."""
SPIKINGJELLY_DATASETS = {"snasnet_cifar10": "cifar10", "snasnet_cifar100": "cifar100",
                         "snasnet_tinyimagenet": "tinyimagenet"}
"""The networks SpikingJelly's port builds (its `args.dataset`), each at its own width only."""
REROUNDED = (CHANNELS_LAST, COMPILED, FUSED, COMPILED_FUSED, BF16, FUSED_BF16)
"""Contenders whose float32 arithmetic differs from the authors' by design, so that their
float32 logits are reported and not enforced, in inference too (the float64 check is): NHWC
convolutions add their products in another order (snasnet_cifar10 at full width: a logits
difference of 0.06), fused weights are rounded products of weight and BatchNorm scale, and
inductor computes BatchNorm and the neuron in its own fused kernels. A membrane within rounding of the threshold then fires
differently, and one spike changes many after it: at width 128, batch 8, (f) first differs
from (d) in one spike of one layer output, which grows to 0.1% of the 47 million spikes and a
logits difference of 0.23 (benchmarks/spike_flips.py), while in float64 both equal the
authors' network exactly."""


def in_mode(found: dict, mode: str) -> dict:
    """The contenders that run in mode (a fused model has no BatchNorm left to train)."""
    return {key: model for key, model in found.items()
            if mode == "inference" or key not in INFERENCE_ONLY}


def spikingjelly_problem(name: str, width) -> Optional[str]:
    """Why SpikingJelly's port cannot join this run, or None when it can."""
    try:
        import spikingjelly.activation_based.model.snas_net  # noqa: F401
    except ImportError as error:
        return (f"SpikingJelly 2.0 is not installed ({error}); pip install -e \".[bench]\" "
                f"adds it")
    if name not in SPIKINGJELLY_DATASETS:
        return f"SpikingJelly's port builds {', '.join(SPIKINGJELLY_DATASETS)} only, not {name}"
    if width is not None and width != MODEL_ARGS[name]["width"]:
        return (f"SpikingJelly's port builds {name} at width {MODEL_ARGS[name]['width']} only, "
                f"not {width}")
    return None


def spikingjelly_network(name: str, baseline: AuthorsSNASNet, genotype, model_args: dict):
    """SpikingJelly 2.0's SNASNet port for the same network, with baseline's weights."""
    from spikingjelly.activation_based import functional
    from spikingjelly.activation_based.model.snas_net import SNASNet as Port

    class SpikingJellySNASNet(Port):
        """The port, its neurons and dropout mask at rest on every call, as (a)'s are: its own
        forward resets only the cells' feedback, the authors' loop calls reset_net."""

        def forward(self, x):
            functional.reset_net(self)
            return super().forward(x)

    arguments = SimpleNamespace(dataset=SPIKINGJELLY_DATASETS[name], timestep=baseline.timesteps,
                                second_avgpooling=model_args["second_pool"], celltype=genotype.cell,
                                threshold=model_args.get("v_threshold", 1.0),
                                tau=model_args.get("tau", 4.0 / 3.0))
    port = SpikingJellySNASNet(arguments, torch.tensor(genotype.matrix))
    port.load_state_dict(baseline.state_dict())  # the authors' key layout, strictly
    port.timesteps = baseline.timesteps
    return port


def build_contenders(name: str, width, device: torch.device, compiled: bool = False):
    """(contender name -> model with equal weights, the architecture's arguments, genotype).
    SpikingJelly's port joins where spikingjelly_problem finds nothing in the way."""
    overrides = {} if width is None else {"width": width}
    model_args = {**MODEL_ARGS[name], **overrides}
    torch.manual_seed(0)
    baseline = AuthorsSNASNet(**model_args)
    excite(baseline)
    ours = snnzoo.create_model(name, **overrides)
    genotype = parse_genotype(model_args["genotype"], model_args["cell"])
    ours.load_state_dict(convert_state_dict(baseline.state_dict(), genotype,
                                            ours.state_dict().keys()))
    found = {BASELINE: baseline, "(b) snnzoo auto": ours}
    if device.type == "cuda":
        found["(c) snnzoo triton"] = copy.deepcopy(ours).set_backend("triton")
    found[CHANNELS_LAST] = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    found[FUSED] = reparameterize_model(found[CHANNELS_LAST].eval())
    found[BF16] = copy.deepcopy(found[CHANNELS_LAST]).set_precision("bf16")
    found[FUSED_BF16] = copy.deepcopy(found[FUSED]).set_precision("bf16")
    if spikingjelly_problem(name, width) is None:
        found[SPIKINGJELLY] = spikingjelly_network(name, baseline, genotype, model_args)
    found = {key: model.to(device) for key, model in found.items()}
    if compiled:
        torch._inductor.config.fallback_random = True  # eager's dropout masks
        if device.type == "cuda":  # CUDA graphs of the NCHW network
            options, base = dict(mode="reduce-overhead"), ours
            fused = reparameterize_model(ours.eval())
        else:
            options, base, fused = {}, found[CHANNELS_LAST], found[FUSED]
        found[COMPILED] = torch.compile(copy.deepcopy(base), **options)
        found[COMPILED_FUSED] = torch.compile(fused, **options)  # fusing made a copy already
    return found, model_args, genotype


def logits_and_gradients(model, images, labels, mode: str, seed: int = 5):
    """(logits, {parameter name: gradient} in training mode, else None)."""
    if mode == "inference":
        model.eval()
        with torch.no_grad():
            return model(images), None
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout mask for every contender
    output = model(images)
    F.cross_entropy(output, labels).backward()
    module = getattr(model, "_orig_mod", model)  # a compiled model's names are its module's
    gradients = {key: parameter.grad for key, parameter in module.named_parameters()}
    model.zero_grad(set_to_none=True)
    return output.detach(), gradients


def compare_with_baseline(models: dict, images, labels, genotype, float64: bool = False):
    """(mode -> contender -> (max |logits difference|, max |gradient difference| over the
    largest gradient, or None in inference), the baseline's largest |logit|). float64: on
    float64 copies with the reference neuron, else on the models as they are timed."""
    if float64:
        models = _float64_references(models)
        images = images.double()
    differences, largest_logit = {}, 0.0
    for mode in MODES:
        expected, baseline_gradients = logits_and_gradients(models[BASELINE], images, labels, mode)
        largest_logit = max(largest_logit, expected.abs().max().item())
        differences[mode] = {BASELINE: (0.0, None if baseline_gradients is None else 0.0)}
        for name, model in in_mode(models, mode).items():
            if name == BASELINE:
                continue
            output, gradients = logits_and_gradients(model, images, labels, mode)
            gradient_difference = None
            if gradients is not None:  # the baseline's gradients in the contender's names
                expected_gradients = (baseline_gradients if name in AUTHORS_LAYOUT else
                                      convert_state_dict(baseline_gradients, genotype, gradients))
                largest = max(g.abs().max().item() for g in expected_gradients.values()) or 1.0
                gradient_difference = max((gradients[key] - g).abs().max().item()
                                          for key, g in expected_gradients.items()) / largest
            differences[mode][name] = ((output - expected).abs().max().item(), gradient_difference)
    return differences, largest_logit


def _float64_references(models: dict) -> dict:
    """Each contender as a float64 copy (_as_float64_reference). A fused one is fused again
    from the float64 copy of the network it was fused from, (d): weights fused in float32
    carry its rounding (relative 1e-7), which moves a membrane across the threshold in
    float64 too (snasnet_cifar10 at full width: 2 of 10 million neuron-steps, then more)."""
    references = {name: _as_float64_reference(model) for name, model in models.items()
                  if name not in INFERENCE_ONLY}
    for name in INFERENCE_ONLY:
        if name in models:
            fused = reparameterize_model(copy.deepcopy(references[CHANNELS_LAST]).eval())
            compiled = hasattr(models[name], "_orig_mod")
            references[name] = torch.compile(fused) if compiled else fused
    return {name: references[name] for name in models}


def _as_float64_reference(model):
    """A float64 copy with the reference neuron, computing in fp32 (the network a bf16
    contender is, in float64); a compiled model's copy is compiled again."""
    compiled = hasattr(model, "_orig_mod")
    model = copy.deepcopy(model._orig_mod if compiled else model).double()
    if hasattr(model, "set_backend"):
        model.set_backend("torch")
    if hasattr(model, "set_precision"):
        model.set_precision("fp32")
    return torch.compile(model) if compiled else model


def make_run(model, images, labels, mode: str):
    if mode == "inference":
        model.eval()

        def run():
            with torch.no_grad():
                model(images)
    else:
        model.train()

        def run():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
    return run


def make_batch(model_args: dict, batch_size: int, device: torch.device):
    """(images, labels): the same batch for every contender, in every process."""
    size = model_args["img_size"]
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(batch_size, model_args["in_chans"], size, size, generator=generator)
    labels = torch.randint(model_args["num_classes"], (batch_size,), generator=generator)
    return images.to(device), labels.to(device)


def contender_run(name: str, width, device_type: str, compiled: bool, key: str, mode: str,
                  batch_size: int, threads):
    """run() of one contender in a child process of its own (common.peak_rss_mb): built as the
    timing process builds it, the others dropped before it runs."""
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(device_type)
    found, model_args, _ = build_contenders(name, width, device, compiled)
    model = found.pop(key)
    del found
    gc.collect()
    images, labels = make_batch(model_args, batch_size, device)
    return make_run(model, images, labels, mode)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_ARGS), default=None,
                        help=f"models to measure (default: {' '.join(MODELS)}; with --quick: "
                             f"snasnet_cifar100)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="images per batch (default: 32; 8 with --quick)")
    parser.add_argument("--width", type=positive_int, default=None,
                        help="channels of cell 1 in both networks, to scale them down for quick "
                             f"CPU runs (default: each model's own; {QUICK_CPU_WIDTH} with --quick "
                             "on the CPU)")
    parser.add_argument("--quick", action="store_true",
                        help="one model, batch 8, 3 repeats (and a reduced width on the CPU): "
                             "about 2 minutes on a 2-core CPU")
    parser.add_argument("--repeats", type=positive_int, default=None,
                        help="timed runs per contender (default: 10; 3 with --quick)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads for torch (default: torch's choice); 1 steadies timings "
                             "on a machine that is busy with other work")
    parser.add_argument("--compile", action="store_true",
                        help="add contender (e), torch.compile of snnzoo's network")
    parser.add_argument("--no-csv", action="store_true", help="print only, record nothing")
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    if args.smoke:
        args.quick = True
        args.width, args.batch_size, args.repeats = args.width or 4, args.batch_size or 2, 1
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    models = args.models or (["snasnet_cifar100"] if args.quick else list(MODELS))
    batch_size = args.batch_size or (8 if args.quick else 32)
    width = args.width or (QUICK_CPU_WIDTH if args.quick and device.type == "cpu" else None)
    repeats = args.repeats or (3 if args.quick else 10)
    warmup = 1 if args.quick else 3
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False

    rows, table, mismatches = [], [], []
    for name in models:
        problem = spikingjelly_problem(name, width)
        if problem:
            print(f"{name}: no {SPIKINGJELLY} row: {problem}", file=sys.stderr)
        found, model_args, genotype = build_contenders(name, width, device, args.compile)
        images, labels = make_batch(model_args, batch_size, device)
        label = f"{name} (width {model_args['width']})"
        print(f"{label}: checking logits and gradients against {BASELINE} (the first runs "
              f"compile snnzoo's LIF paths)", file=sys.stderr)
        # float64 first: deepcopy refuses modules that hold a forward's state
        exact, _ = compare_with_baseline(found, images, labels, genotype, float64=True)
        differences, largest = compare_with_baseline(found, images, labels, genotype)
        if largest == 0.0:
            print(f"warning: {label}'s logits are all zero, so the equality check is vacuous",
                  file=sys.stderr)
        for mode in MODES:
            for key, (difference, gradient_difference) in exact[mode].items():
                if key in PEERS:
                    continue  # reported in the table, not enforced
                if difference > FLOAT64_ATOL or (gradient_difference or 0.0) > FLOAT64_ATOL:
                    mismatches.append(f"{label} {mode} {key} in float64: max |logits difference| "
                                      f"{difference:.3g}, max |gradient difference| / max |grad| "
                                      f"{gradient_difference} (> {FLOAT64_ATOL})")
        for mode in MODES:
            contenders = in_mode(found, mode)
            print(f"{label} {mode}: timing {len(contenders)} contenders in turns, {warmup} "
                  f"warm-up + {repeats} runs each", file=sys.stderr)
            runs = {key: make_run(model, images, labels, mode) for key, model in contenders.items()}
            timings = time_in_turns(runs, device, warmup, repeats)
            peaks, resident = {}, {}
            for key, model in contenders.items():
                model.zero_grad(set_to_none=True)  # count the gradients as allocated by the run
                peaks[key] = peak_memory_mb(runs[key], device)
            print(f"{label} {mode}: peak RSS of each contender in a process of its own",
                  file=sys.stderr)
            for key in contenders:
                resident[key] = peak_rss_mb(contender_run, name, width, device.type, args.compile,
                                            key, mode, batch_size, args.threads)
            base_ms, base_peak = timings[BASELINE][0], peaks[BASELINE]
            for key in contenders:
                median, fastest, slowest = timings[key]
                difference, gradient_difference = differences[mode][key]
                gradient_text = "-" if gradient_difference is None else f"{gradient_difference:.1e}"
                enforced = key not in PEERS and (
                    (mode == "inference" and key not in REROUNDED)
                    or (device.type == "cpu" and key == SAME_ROUNDING))
                if difference > LOGITS_ATOL and enforced:
                    mismatches.append(f"{label} {mode} {key}: max |logits difference| "
                                      f"{difference:.3g} > {LOGITS_ATOL}")
                exact_difference = max(exact[mode][key][0], exact[mode][key][1] or 0.0)
                images_per_s = batch_size / (median * 1e-3)
                memory_ratio = f"{peaks[key] / base_peak:.2f}" if base_peak else ""
                rows.append(dict(device=device_name(device), versions=versions(), model=name,
                                 width=model_args["width"], batch_size=batch_size,
                                 timesteps=found[key].timesteps, mode=mode, contender=key,
                                 median_ms=f"{median:.2f}", min_ms=f"{fastest:.2f}",
                                 max_ms=f"{slowest:.2f}", images_per_s=f"{images_per_s:.1f}",
                                 peak_mb=f"{peaks[key]:.1f}",
                                 throughput_vs_a=f"{base_ms / median:.2f}",
                                 memory_vs_a=memory_ratio,
                                 peak_rss_mb=f"{resident[key]:.0f}",
                                 rss_vs_a=f"{resident[key] / resident[BASELINE]:.2f}",
                                 max_logits_difference=f"{difference:.2e}",
                                 max_gradient_difference_relative=gradient_text,
                                 float64_max_difference=f"{exact_difference:.1e}"))
                table.append([label, mode, key, f"{median:.0f} ({fastest:.0f}-{slowest:.0f})",
                              f"{images_per_s:.1f} ({batch_size / (slowest * 1e-3):.1f}-"
                              f"{batch_size / (fastest * 1e-3):.1f})",
                              f"{base_ms / median:.2f}x", f"{resident[key]:.0f}",
                              f"{resident[key] / resident[BASELINE]:.2f}", f"{peaks[key]:.0f}",
                              memory_ratio or "-", f"{difference:.1e}", gradient_text,
                              f"{exact_difference:.0e}"])
                print(f"  {key:24s} {median:10.1f} ms  {images_per_s:8.1f} img/s  peak RSS "
                      f"{resident[key]:8.0f} MiB  torch peak {peaks[key]:8.1f} MiB", file=sys.stderr)
        del found
    print(f"\nSNASNet models on {device_name(device)} ({versions()}), batch {batch_size}, T=5, fp32 "
          f"(TF32 off) but for the bf16 contenders; median of {repeats} after {warmup} warm-up "
          f"runs, contenders in turns (min-max); peak RSS of a process running the contender "
          f"alone, torch's peak allocation in the timing process:\n")
    print(markdown_table(["model", "mode", "contender", "ms per batch", "images/s",
                          "throughput vs (a)", "peak RSS MiB", "RSS vs (a)",
                          "torch peak MiB", "memory vs (a)",
                          "max |Δ logits| vs (a)", "max |Δ grad| / max |grad|",
                          "float64 check: max |Δ|"], table))
    return record_unless_mismatched("models", rows, mismatches, args.no_csv,
                                    "snnzoo's results differ from the authors' network's")


if __name__ == "__main__":
    sys.exit(main())
