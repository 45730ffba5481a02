"""Write model_cards/<name>/ for every registered snnzoo model, from its registered cfg.

    python scripts/make_model_cards.py                  # every snnzoo entrypoint (MODEL_ARGS)
    python scripts/make_model_cards.py snasnet_fmnist   # only these
    python scripts/make_model_cards.py --check          # exit 1 if a card is out of date

Each folder gets README.md (the Hub model card), config.json (timm's Hub config, written as
snnzoo.hub.save_pretrained writes it) and cell.png (snnzoo.viz.draw_cell). Every fact in them
comes from snnzoo.create_model(name): its pretrained_cfg and model_args, its parameter count,
and multiply-accumulates counted on one forward pass. Nothing else is copied by hand, so the
cards cannot drift from the models: rerun this script after changing a cfg.

Never touched: model.safetensors and any other file. When a folder holds model.safetensors,
config.json records its sha256 (as save_pretrained does).

Measured results come from model_cards/<name>/results.json when it exists:

    {
      "top1": 91.23,                     required, % on the test split
      "top5": 99.71,                     % (optional, like everything below)
      "split": "test", "images": 10000,
      "spikes_per_image": 51234.5,
      "firing_rates": {"cell1.edges.0_1.lif": 0.081},
      "command": "python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist ...",  required
      "hardware": "2-core CPU", "training_time": "5 h 40 min", "epochs": 6,
      "weights": "final weights of the run",
      "sample_top1": 92.35                % on the 2,000 embedded sample images (optional)
    }

Without results.json, a measured section already in README.md (between the measured:begin and
measured:end markers) is kept as it is, with the metrics of its front matter.

Energy figures come from model_cards/<name>/energy.json when it exists: what
`python -m snnzoo.validate <name> --checkpoint model_cards/<name> --dataset DATASET --json
model_cards/<name>/energy.json` wrote (its "energy" and "firing_rates" entries). The card then
gets an Energy section and firing_rates.png, a bar chart of the firing rate of each LIF layer
(snnzoo.viz.firing_rate_chart).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import re
import sys
from pathlib import Path

import torch
from torch import nn

import snnzoo
from snnzoo import hub
from snnzoo._files import write_text_atomically
from snnzoo.cards import (ARXIV_ID, SEARCHED_TAGS, cell_edge_table, citation, create_model_snippet,
                          energy_table, front_matter, split_card)
from snnzoo.data import dataset_info
from snnzoo.models.genotype import OPERATIONS, parse_genotype
from snnzoo.models.snasnet import DATASET, MODEL_ARGS
from snnzoo._messages import format_count, format_energy
from snnzoo.energy import AC_PJ, MAC_PJ
from snnzoo.viz import draw_cell, firing_rate_chart

ROOT = Path(__file__).resolve().parent.parent
CARDS_DIR = ROOT / "model_cards"
CELL_PICTURE = "cell.png"
RESULTS_FILENAME = "results.json"
ENERGY_FILENAME = "energy.json"
FIRING_PICTURE = "firing_rates.png"
MEASURED_BEGIN = "<!-- measured:begin -->"
MEASURED_END = "<!-- measured:end -->"

# How to get each data set for `python -m snnzoo.train`.
DATA_FLAGS = {"tinyimagenet": "--data-dir DIR  # DIR/tiny-imagenet-200, extracted by hand"}
DEFAULT_DATA_FLAGS = "--download"

# Top-1 accuracy (%) the SNASNet paper reports for SNASNet with backward connections at T=5.
# Reported by the authors, never measured here. None: the card says "reported in the paper"
# without a number (the CIFAR-10 figure could not be checked against the paper's text).
PAPER_TOP1 = {"snasnet_cifar10": None, "snasnet_cifar100": 73.04, "snasnet_tinyimagenet": 54.60}
PAPER_NOTES = {"snasnet_tinyimagenet": " This entrypoint uses CIFAR-100's searched cell; the "
                                        "paper's figure may be for a cell searched on Tiny "
                                        "ImageNet."}
# The only checkpoint the authors released, and the model it converts to.
AUTHORS_CHECKPOINT = {"snasnet_cifar100": "save_cifar100_bw.pth.tar"}
# Models whose weights are being trained now (the card says so until results.json exists).
IN_TRAINING: set[str] = set()
# Models that are our own design rather than the paper's.
OWN_DESIGN = {"snasnet_fmnist": "snasnet_cifar100"}  # name -> the model whose cell it borrows

AUTHORS_CODE = ("https://github.com/Intelligent-Computing-Lab-Yale/"
                "Neural-Architecture-Search-for-Spiking-Neural-Networks")
# Top-level modules whose per-step output shape the macro-network table shows, in order.
STAGES = ("stem", "cell1", "transition", "cell2", "final_act", "pool2", "pre_lif", "fc")


class CardError(RuntimeError):
    """A card cannot be written; the message says why and what to do."""


# Facts


def count_macs(model: nn.Module) -> dict:
    """Multiply-accumulates of every Conv2d and Linear layer for one image, over all T steps.

    One train-mode forward pass of one image (on a copy, without gradients) on the CPU with
    forward hooks (dense counts: every input counted, zero or not). Train mode, because in
    eval mode the model skips the last step's feedback convolutions, which reach no later
    step: the counts are the architecture's, not that shortcut's. Returns total, stem (the
    part run once per image on the static image), per_step (total / T), timesteps, and the
    per-step output shape of each stage.
    """
    model = copy.deepcopy(model).train()
    counts = {"total": 0, "stem": 0}
    shapes = {}
    handles = []

    def layer_hook(name):
        def hook(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            else:
                per_output = module.in_features
            macs = output.numel() * per_output
            counts["total"] += macs
            if name.startswith("stem."):
                counts["stem"] += macs
        return hook

    def stage_hook(name):
        def hook(module, inputs, output):
            shapes[name] = tuple(output.shape[-3:] if output.dim() >= 4 else output.shape[-1:])
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(layer_hook(name)))
        if name in STAGES:
            handles.append(module.register_forward_hook(stage_hook(name)))
    backends = {module: module.backend for module in model.modules() if hasattr(module, "backend")}
    model.set_backend("torch")  # the plain reference: no compilation for one pass
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small pass; more threads only contend on a busy machine
    try:
        with torch.no_grad():
            device = next(model.parameters()).device  # the meta device works too
            model(torch.zeros(1, *model.pretrained_cfg["input_size"], device=device))
    finally:
        torch.set_num_threads(threads)
        for handle in handles:
            handle.remove()
        for module, backend in backends.items():
            module.backend = backend
    steps = model.timesteps
    return dict(total=counts["total"], stem=counts["stem"], per_step=counts["total"] / steps,
                timesteps=steps, shapes=shapes)


def model_facts(name: str, device: str | None = None) -> dict:
    """Everything a card states about a model, from a freshly built one (on device, e.g.
    "meta" to count without allocating or initialising the weights)."""
    with torch.device(device) if device else contextlib.nullcontext():
        model = snnzoo.create_model(name)
    cfg = model.pretrained_cfg
    if name not in DATASET:
        raise CardError(f"{name} has no data set in snnzoo.models.snasnet.DATASET; add it there "
                        f"(and its Hub id to snnzoo.data's table) before writing its card")
    dataset = DATASET[name]
    info = dataset_info(dataset)
    if info.hub_id is None:
        raise CardError(f"data set {dataset!r} of {name} has no Hub id; add its hub_id to "
                        f"snnzoo.data.DATASETS")
    return dict(name=name, model=model, cfg=cfg, args=dict(model.model_args),
                genotype=parse_genotype(cfg["genotype"], cfg["cell"]),
                parameters=sum(parameter.numel() for parameter in model.parameters()),
                macs=count_macs(model), dataset=info, hub_dataset=info.hub_id)


# config.json


def render_config(model: nn.Module, folder: Path) -> str:
    """timm's Hub config.json as snnzoo.hub.save_pretrained writes it; the sha256 is that of
    folder/model.safetensors when present, else the registered cfg's (None: unpublished)."""
    weights = folder / hub.WEIGHTS_FILENAME
    sha256 = (hub.file_sha256(weights) if weights.is_file()
              else model.pretrained_cfg.get(hub.WEIGHTS_SHA256_KEY))
    return hub.config_text(hub.model_config(model, sha256))


# README.md


def _read_json(path: Path, required: tuple, remedy: str) -> dict | None:
    """The JSON object in path, or None where there is no such file; a CardError where it is
    not JSON or lacks one of the required keys, with the remedy."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CardError(f"{path} is not valid JSON ({error}); {remedy}") from None
    missing = [key for key in required if not isinstance(data, dict) or key not in data]
    if missing:
        raise CardError(f"{path} lacks {', '.join(missing)}: {remedy}")
    return data


def read_results(folder: Path) -> dict | None:
    return _read_json(folder / RESULTS_FILENAME, ("top1", "command"),
                      f"it needs at least \"top1\" (%) and \"command\" (see "
                      f"{Path(__file__).name} --help), or delete it")


def read_energy(folder: Path) -> dict | None:
    """What snnzoo.validate wrote into folder/energy.json, or None where there is none."""
    return _read_json(folder / ENERGY_FILENAME,
                      ("energy", "firing_rates", "dataset", "split", "images", "top1"),
                      f"measure again with python -m snnzoo.validate ... --json "
                      f"{folder / ENERGY_FILENAME} (see {Path(__file__).name} --help)")


def measured_block(text: str) -> str | None:
    """The measured section of a card (markers included), or None."""
    match = re.search(re.escape(MEASURED_BEGIN) + r".*?" + re.escape(MEASURED_END), text,
                      re.DOTALL)
    return match.group(0) if match else None


def _measured_from_results(facts: dict, results: dict) -> tuple[str, dict]:
    """The measured section and its front matter (metrics, model-index) from results.json."""
    dataset = facts["dataset"]
    split = results.get("split", "test")
    images = f" ({results['images']:,} images)" if "images" in results else ""
    weights = results.get("weights", "the published weights")
    rows = [("top-1 accuracy", f"{results['top1']:.2f}%")]
    if "top5" in results:
        rows.append(("top-5 accuracy", f"{results['top5']:.2f}%"))
    if "spikes_per_image" in results:
        rows.append(("spikes per image (all LIF layers, all T steps)",
                     f"{results['spikes_per_image']:,.0f}"))
    lines = [MEASURED_BEGIN, "### Measured here", "",
             f"Measured by us with snnzoo on the {dataset.title} {split} split{images}, "
             f"{weights}; nothing was chosen on this split.", "",
             "| metric | value |", "|---|---|", *[f"| {key} | {value} |" for key, value in rows]]
    if results.get("note"):
        lines += ["", results["note"]]
    if "sample_top1" in results:
        lines += ["", f"On the 2,000 images of the Fashion-MNIST sample embedded in snnzoo (taken "
                      f"from the test split; `load_dataset('fashion-mnist-sample')`, both of its "
                      f"splits): top-1 {results['sample_top1']:.2f}%. The tests check this figure."]
    if results.get("firing_rates"):
        lines += ["", "Firing rate of each LIF layer (spikes per neuron per timestep):", "",
                  "| LIF layer | firing rate |", "|---|---|"]
        lines += [f"| `{layer}` | {rate:.4f} |" for layer, rate in results["firing_rates"].items()]
    lines += ["", "Command:", "", "```", results["command"], "```"]
    if results.get("command_as_run"):
        lines += ["", "Exactly as it ran (with the data location and run folder of that machine):",
                  "", "```", results["command_as_run"], "```"]
    if results.get("curves"):
        lines += ["", f"![training curves]({results['curves']})", "",
                  f"Loss and top-1 accuracy per epoch ({results['curves']}; the numbers are in "
                  f"{results.get('log', 'log.csv')})."]
    details = [f"{label}: {results[key]}" for key, label in
               (("hardware", "hardware"), ("training_time", "training time"), ("epochs", "epochs"))
               if key in results]
    if details:
        sentence = "; ".join(details)
        lines += ["", sentence[0].upper() + sentence[1:] + "."]
    lines.append(MEASURED_END)
    metrics = [dict(type="accuracy", value=round(float(results["top1"]), 2),
                    name="Top-1 accuracy")]
    if "top5" in results:
        metrics.append(dict(type="top_5_accuracy", value=round(float(results["top5"]), 2),
                            name="Top-5 accuracy"))
    model_index = [dict(name=facts["name"], results=[dict(
        task=dict(type="image-classification", name="Image Classification"),
        dataset=dict(type=facts["hub_dataset"], name=dataset.title, split=split),
        metrics=metrics)])]
    return "\n".join(lines), {"metrics": ["accuracy"], "model-index": model_index}


def _measured(facts: dict, folder: Path) -> tuple[str | None, dict]:
    results = read_results(folder)
    if results is not None:
        return _measured_from_results(facts, results)
    card = folder / hub.CARD_FILENAME
    if card.is_file():  # keep what was measured before, never drop it
        text = card.read_text(encoding="utf-8")
        block = measured_block(text)
        if block is not None:
            front_matter, _ = split_card(text)
            return block, {key: front_matter[key] for key in ("metrics", "model-index")
                           if key in front_matter}
    return None, {}


def _giga(value: float) -> str:
    if value >= 1e9:
        return f"{value / 1e9:.2f} G"
    return f"{value / 1e6:.1f} M"


def _shape(shape: tuple) -> str:
    return " \u00d7 ".join(str(size) for size in shape)


def _status(facts: dict, folder: Path, has_measured: bool) -> str:
    name = facts["name"]
    sha256 = facts["cfg"].get(hub.WEIGHTS_SHA256_KEY)
    if sha256:
        repo_id = facts["cfg"]["hf_hub_id"]
        return (f"**Pretrained weights:** `model.safetensors` in this folder, sha256 "
                f"`{sha256}`, recorded in snnzoo's cfg: `pretrained=True` downloads it from "
                f"[{repo_id}](https://huggingface.co/{repo_id}) once this folder is pushed there "
                f"(`python -m snnzoo.publish model_cards/{name} --repo-id {repo_id}`) and "
                f"checks the digest on download.")
    until = ("Until they are, `pretrained=True` raises an error that says how to get weights; "
             "both ways are under [Getting weights](#getting-weights).")
    if has_measured or (folder / hub.WEIGHTS_FILENAME).is_file():
        return ("**Pretrained weights were trained here but are not yet published** on the Hub. "
                + until)
    if name in IN_TRAINING:
        return "**Pretrained weights are being trained and not yet published.** " + until
    return "**Pretrained weights are not yet published.** " + until


def _what_it_is(facts: dict) -> list[str]:
    name, args = facts["name"], facts["args"]
    lines = ["SNASNet is the spiking neural network of Kim et al., *Neural Architecture Search "
             "for Spiking Neural Networks* (ECCV 2022, "
             f"[arXiv:{ARXIV_ID}](https://arxiv.org/abs/{ARXIV_ID})). Its cell was chosen without "
             "training: among random cells, the one whose leaky integrate-and-fire (LIF) neurons "
             "at initialisation give the most distinct spike patterns for different images "
             "(sparsity-aware Hamming distance kernel). A *backward* cell may also have temporal "
             "feedback edges, whose output reaches an earlier node at the next timestep.", ""]
    if name in OWN_DESIGN:
        source = OWN_DESIGN[name]
        source_args = snnzoo.create_model(source).model_args
        lines += [f"`{name}` is **our own small design, not a network from the paper**: "
                  f"{dataset_info(DATASET[source]).title}'s searched cell "
                  f"(`{source_args['genotype']}`, as in `{source}`) at width {args['width']} "
                  f"instead of {source_args['width']}, a classifier of "
                  f"{args['classifier_width']:,} LIF neurons instead of "
                  f"{source_args['classifier_width']:,}, and its classifier's Linear layers "
                  f"initialised with std {args['head_init_std']} instead of the authors' "
                  f"{source_args['head_init_std']} so that the classifier spikes from the "
                  f"start; trained on {facts['dataset'].title} "
                  f"({_shape(facts['cfg']['input_size'])} images).", ""]
    else:
        lines += [f"`{name}` is SNASNet for {facts['dataset'].title} with the settings of the "
                  f"authors' code, rebuilt on timm and snnzoo's LIF neurons.", ""]
    return lines


def _details(facts: dict) -> list[str]:
    cfg, args, genotype = facts["cfg"], facts["args"], facts["genotype"]
    feedback = "with temporal feedback edges" if genotype.has_feedback else "no feedback edges"
    return [
        "## Model details", "",
        f"- **Genotype:** `{genotype}`",
        f"- **Cell type:** {genotype.cell} ({feedback})",
        f"- **Timesteps:** {cfg['timesteps']}",
        f"- **Parameters:** {facts['parameters']:,} "
        f"({facts['parameters'] / 1e6:.2f} M; BatchNorm running statistics not counted)",
        f"- **MACs per timestep:** {_giga(facts['macs']['per_step'])} "
        f"(see [Compute](#compute))",
        f"- **Input:** {_shape(cfg['input_size'])} images, normalised with mean "
        f"{list(cfg['mean'])} and std {list(cfg['std'])}",
        f"- **Classes:** {cfg['num_classes']} ({facts['dataset'].title}, "
        f"[{facts['hub_dataset']}](https://huggingface.co/datasets/{facts['hub_dataset']}))",
        f"- **Neurons:** LIF, tau {args['tau']:.4g}, threshold {args['v_threshold']}, hard "
        f"reset to 0, arctan surrogate gradient",
        f"- **Paper:** [arXiv:{ARXIV_ID}](https://arxiv.org/abs/{ARXIV_ID}); authors' code: "
        f"[{AUTHORS_CODE.removeprefix('https://github.com/')}]({AUTHORS_CODE})",
        f"- **License:** {cfg['license']}", ""]


def _cell(facts: dict) -> list[str]:
    genotype = facts["genotype"]
    lines = ["## The searched cell", "", "![cell](cell.png)", "",
             f"The genotype `{genotype}` is the cell's 4 \u00d7 4 connection matrix, one "
             f"group of digits per row: row *i*, column *j* is the operation on the edge from "
             f"node *i* to node *j* (0 none, "
             + ", ".join(f"{op} {OPERATIONS[op]}" for op in sorted(OPERATIONS) if op)
             + "). Entries above the diagonal are forward edges, within a timestep; entries "
             "below it are feedback edges: what node *i* sends back to node *j* at step *t* "
             "is added to node *j*'s input at step *t* + 1. Node 0 is the cell's input, node 3 "
             "its output, and every node sums its incoming edges.", ""]
    return lines + cell_edge_table(genotype) + [""]


def _macro(facts: dict) -> list[str]:
    args, cfg, shapes = facts["args"], facts["cfg"], facts["macs"]["shapes"]
    width, pool = args["width"], args["second_pool"]
    stride = f", stride {args['stem_stride']}" if args["stem_stride"] != 1 else ""
    stages = [
        ("stem", f"conv 3\u00d73{stride} \u2192 BN, **once per image** on the static image "
                 f"(direct encoding); its output is the input of every timestep"),
        ("cell1", f"the searched cell, {width} channels"),
        ("transition", f"BN \u2192 LIF \u2192 conv 3\u00d73 to {2 * width} channels \u2192 BN "
                       f"\u2192 avg-pool 2\u00d72"),
        ("cell2", f"the searched cell, {2 * width} channels"),
        ("final_act", "BN \u2192 LIF"),
        ("pool2", f"avg-pool {pool}\u00d7{pool}"),
        ("pre_lif", f"dropout {args['drop_rate']} (one mask for all steps) \u2192 Linear "
                    f"\u2192 LIF ({args['classifier_width']:,} neurons)"),
        ("fc", f"Linear to {cfg['num_classes']} classes \u00d7 {args['neurons_per_class']} "
               f"voting neurons"),
    ]
    lines = ["## Macro network", "",
             f"Everything after the stem runs for each of the T = {cfg['timesteps']} timesteps.",
             "", "| stage | layers | output per step |", "|---|---|---|"]
    lines += [f"| `{stage}` | {text} | {_shape(shapes[stage])} |" for stage, text in stages]
    lines += ["", f"The logits are each class's {args['neurons_per_class']} voting neurons "
                  f"averaged, then averaged over the {cfg['timesteps']} timesteps.", ""]
    return lines


def _compute(facts: dict) -> list[str]:
    macs = facts["macs"]
    steps = macs["timesteps"]
    return ["## Compute", "",
            "Multiply-accumulates (MACs; one MAC is about two FLOPs) of every convolution and "
            "Linear layer for one image, counted by `scripts/make_model_cards.py` with forward "
            "hooks on one forward pass of a freshly built model. BatchNorm, pooling, LIF updates "
            "and additions are not counted. Counts are dense, as if every input were nonzero: "
            "layers fed by spikes need only additions for the spikes that occur, so on "
            "event-driven hardware the work is lower and depends on the firing rates.", "",
            "| | MACs |", "|---|---|",
            f"| one image, all T = {steps} timesteps | {_giga(macs['total'])} "
            f"({macs['total']:,}) |",
            f"| per timestep (all steps / T) | {_giga(macs['per_step'])} |",
            f"| of which the stem, run once per image (included above) | "
            f"{_giga(macs['stem'])} ({macs['stem']:,}) |", ""]


def _usage(facts: dict) -> list[str]:
    name = facts["name"]
    channels = facts["cfg"]["input_size"][0]
    mode, kind = ("L", "grayscale") if channels == 1 else ("RGB", "RGB")
    return ["## Usage", "",
            *create_model_snippet(name, pretrained=True, eval_mode=True), "",
            "The same with timm (importing snnzoo registers its models with timm), and the "
            "preprocessing from the model's pretrained cfg:", "",
            "```python", "import timm", "from PIL import Image", "",
            "import snnzoo  # noqa: F401  registers snasnet_*", "",
            f"model = timm.create_model(\"{name}\", pretrained=True).eval()",
            "transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))",
            f"image = Image.open(\"image.png\").convert(\"{mode}\")  # the model takes "
            f"{channels}-channel ({kind}) images",
            f"logits = model(transform(image).unsqueeze(0))  # [1, "
            f"{facts['cfg']['num_classes']}], the vote averaged over T = "
            f"{facts['cfg']['timesteps']} steps", "```", "",
            "Weights you trained or converted yourself load the same way from a file:", "",
            "```python",
            f"model = snnzoo.create_model(\"{name}\", pretrained=True,",
            "                             pretrained_cfg_overlay=dict("
            "file=\"DIR/model.safetensors\"))",
            "```", "",
            "For faster inference, fold the BatchNorms, and the average pool after the "
            "transition, into the convolutions (timm's reparameterisation; the same spikes up "
            "to float rounding) and compile; on a CPU, compute in NHWC too:", "",
            "```python",
            "import timm, torch", "",
            "model = timm.utils.reparameterize_model(model.eval())",
            "model = torch.compile(model.to(memory_format=torch.channels_last))",
            "```", "",
            "For neuromorphic tools and hardware, export it to NIR (snnzoo's docs/nir.md says "
            "what the file holds and which tools read it; `--checkpoint DIR` for your own "
            "weights):", "",
            "```", f"python -m snnzoo.export_nir {name} --pretrained --out {name}.nir", "```", ""]


def _getting_weights(facts: dict) -> list[str]:
    name = facts["name"]
    dataset = facts["dataset"].name
    data_flags = DATA_FLAGS.get(dataset, DEFAULT_DATA_FLAGS)
    lines = ["## Getting weights", "",
             "Train them with the authors' recipe as their code ran it (SGD, lr 0.1, momentum "
             "0.9, dampening 5e-4, no weight decay, cosine schedule, 300 epochs, batch 64; "
             "`--help` lists the options):", "",
             "```", f"python -m snnzoo.train {name} --dataset {dataset} {data_flags}", "```", ""]
    if name in AUTHORS_CHECKPOINT:
        checkpoint = AUTHORS_CHECKPOINT[name]
        lines += [f"Or convert the checkpoint the authors released for this network, "
                  f"`{checkpoint}` (linked from their [repository]({AUTHORS_CODE})):", "",
                  "```", f"python -m snnzoo.convert {checkpoint} --model {name} --out DIR", "```",
                  "", "Its accuracy after conversion has not been measured here.", ""]
    elif name in OWN_DESIGN:
        lines += ["The authors released no checkpoint of this network (it is ours); "
                  f"`python -m snnzoo.convert CHECKPOINT --model {name} --out DIR` converts "
                  "one only if you trained this configuration with the authors' code.", ""]
    else:
        released = ", ".join(f"`{file}`, for `{model}`"
                             for model, file in AUTHORS_CHECKPOINT.items())
        lines += [f"The authors released a checkpoint only for CIFAR-100 ({released}); one "
                  "trained with their code for this network converts with:", "",
                  "```", f"python -m snnzoo.convert CHECKPOINT --model {name} --out DIR", "```", ""]
    return lines


def _results(facts: dict, measured: str | None) -> list[str]:
    name = facts["name"]
    lines = ["## Results", "", "### Reported by the authors (not measured here)", ""]
    if name in OWN_DESIGN:
        lines.append(f"None: the paper does not evaluate this network or "
                     f"{facts['dataset'].title}.")
    elif PAPER_TOP1.get(name) is not None:
        lines.append(f"{PAPER_TOP1[name]:.2f}% top-1 on {facts['dataset'].title} for SNASNet "
                     f"with backward connections at T = 5, as reported in the paper; not "
                     f"reproduced here." + PAPER_NOTES.get(name, ""))
    else:
        lines.append(f"The top-1 accuracy of SNASNet with backward connections on "
                     f"{facts['dataset'].title} at T = 5 is reported in the paper (see its "
                     f"results tables); not reproduced here.")
    lines.append("")
    if measured is not None:
        lines += [measured, ""]
    else:
        why = ("its weights are being trained" if name in IN_TRAINING
               else "no weights of this model have been trained and evaluated with snnzoo")
        lines += ["### Measured here", "", f"Nothing yet: {why}.", ""]
    return lines


def _validate_command(name: str, measured: dict) -> str:
    """The snnzoo.validate command that measures what energy.json holds."""
    options = [f"--checkpoint model_cards/{name}", f"--dataset {measured['dataset']}"]
    if measured["split"] != "test":
        options.append(f"--split {measured['split']}")
    if measured.get("precision", "fp32") != "fp32":
        options.append(f"--precision {measured['precision']}")
    options += [flag for key, flag in (("reparam", "--reparam"), ("channels_last",
                                                                   "--channels-last"))
                if measured.get(key)]
    energy = measured["energy"]
    options += [f"{flag} {energy[key]}" for key, flag, default in
                (("ac_pj", "--energy-ac-pj", AC_PJ), ("mac_pj", "--energy-mac-pj", MAC_PJ))
                if energy[key] != default]
    return " ".join([f"python -m snnzoo.validate {name}", *options,
                     f"--json model_cards/{name}/{ENERGY_FILENAME}"])


def _device_kind(device: str) -> str:
    return {"cpu": "CPU", "cuda": "GPU"}.get(device.partition(":")[0], device)


def _energy(facts: dict, measured: dict | None) -> list[str]:
    if measured is None:
        return []
    energy, steps = measured["energy"], facts["cfg"]["timesteps"]
    dataset = (facts["dataset"].title if measured["dataset"] == facts["dataset"].name
               else measured["dataset"])
    return [
        "## Energy", "",
        f"Per image, over all T = {steps} timesteps, on the {dataset} {measured['split']} split "
        f"({measured['images']:,} images) with the weights in this folder, measured by "
        f"`snnzoo.validate` ({measured.get('precision', 'fp32')} on the "
        f"{_device_kind(measured.get('device', 'cpu'))}; top-1 {measured['top1']:.2f}% in that "
        f"run). Layers "
        f"fed by spikes do synaptic operations (SynOps: one accumulate for each spike and "
        f"output it reaches, exact at the borders); the stem's convolution (on the pixels, once "
        f"per image) and the classifier's first Linear (on pooled spikes) do dense "
        f"multiply-accumulates (MACs). BatchNorm counts as folded into the convolutions; "
        f"pooling, biases and neuron updates are not counted, nor the last step's feedback "
        f"convolutions, which reach no later step and are not computed. The energy is "
        f"{energy['ac_pj']} pJ per SynOp and {energy['mac_pj']} pJ per MAC (32-bit float, "
        f"45 nm, Horowitz 2014), beside the same network as an ANN (ReLU for LIF, run once: "
        f"dense MACs of every layer but the feedback convolutions). The conventions and a "
        f"comparison with SpikingJelly 2.0's counters are in snnzoo's docs/energy.md.", "",
        "| per image | SNN | ANN |", "|---|--:|--:|",
        f"| SynOps | {format_count(energy['synops'])} | 0 |",
        f"| MACs | {format_count(energy['macs'])} | {format_count(energy['ann_macs'])} |",
        f"| energy | {format_energy(energy['energy_pj'])} | "
        f"{format_energy(energy['ann_energy_pj'])} |", "",
        f"The spiking network spends {energy['energy_pj'] / energy['ann_energy_pj']:.3f} of "
        f"the ANN's energy; its LIF neurons fire at {energy['firing_rate']:.4f} (spikes per "
        f"neuron per timestep, all layers). Per layer:", "",
        *energy_table(energy), "",
        f"![firing rate of each LIF layer]({FIRING_PICTURE})", "",
        f"The firing rate of each LIF layer in the same run ({FIRING_PICTURE}; the numbers are "
        f"in {ENERGY_FILENAME}). Command:", "",
        "```", _validate_command(facts["name"], measured), "```", ""]


def _provenance(facts: dict, measured: str | None, energy: dict | None) -> list[str]:
    return ["## Where the numbers come from", "",
            "- Genotype, cell type, timesteps, widths and input: the registered cfg "
            f"(`snnzoo.create_model(\"{facts['name']}\")`'s `pretrained_cfg` and `model_args`), "
            "the same that builds the model; `config.json` is written from it.",
            "- Parameters, MACs and output shapes: counted by `scripts/make_model_cards.py` on "
            "a freshly built model.",
            "- Accuracies under *Reported by the authors*: taken from the paper, reported by "
            "the authors, not measured here.",
            "- Numbers under *Measured here*: " + (
                "measured by us with snnzoo, with the command given there."
                if measured is not None else "none yet."),
            *([f"- Energy figures and {FIRING_PICTURE}: measured by `snnzoo.validate` into "
               f"{ENERGY_FILENAME}, with the command given under *Energy*."]
              if energy is not None else []),
            ""]


def render_card(facts: dict, folder: Path) -> str:
    measured, measured_front_matter = _measured(facts, folder)
    energy = read_energy(folder)
    metadata = front_matter(facts["cfg"]["license"], SEARCHED_TAGS, datasets=[facts["hub_dataset"]],
                            pipeline_tag="image-classification", extra=measured_front_matter)
    body = [f"# {facts['name']}", "", _status(facts, folder, measured is not None), "",
            *_what_it_is(facts), *_details(facts), *_cell(facts), *_macro(facts),
            *_compute(facts), *_usage(facts), *_getting_weights(facts),
            *_results(facts, measured), *_energy(facts, energy),
            *_provenance(facts, measured, energy), *citation()]
    return metadata + "\n" + "\n".join(body)


# Writing


def expected_files(name: str, cards_dir: Path = CARDS_DIR, facts: dict | None = None
                   ) -> dict[str, str]:
    """README.md and config.json of a model as this script writes them."""
    facts = facts or model_facts(name)
    folder = cards_dir / name
    return {hub.CARD_FILENAME: render_card(facts, folder),
            hub.CONFIG_FILENAME: render_config(facts["model"], folder)}


def write_model_folder(name: str, cards_dir: Path = CARDS_DIR) -> Path:
    """Write README.md, config.json and cell.png of a model; leave every other file alone."""
    folder = cards_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    facts = model_facts(name)
    for filename, text in expected_files(name, cards_dir, facts).items():
        write_text_atomically(folder / filename, text)
    draw_cell(facts["genotype"], folder / CELL_PICTURE, title=name)
    energy = read_energy(folder)
    if energy is not None:
        firing_rate_chart(energy["firing_rates"], folder / FIRING_PICTURE,
                          title=f"{name}: firing rate of each LIF layer")
    return folder


def check_model_folder(name: str, cards_dir: Path = CARDS_DIR, device: str | None = None
                       ) -> list[str]:
    """What is missing or out of date in a model's folder; empty when it is current."""
    folder = cards_dir / name
    pictures = [CELL_PICTURE] + ([FIRING_PICTURE] if (folder / ENERGY_FILENAME).is_file() else [])
    problems = [f"{folder / picture} is missing" for picture in pictures
                if not (folder / picture).is_file()]
    facts = model_facts(name, device)
    for filename, text in expected_files(name, cards_dir, facts).items():
        path = folder / filename
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} is out of date")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/make_model_cards.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*",
                        help="models to write (default: snnzoo's own entrypoints; searched "
                             "variants get their cards from the search)")
    parser.add_argument("--out", type=Path, default=CARDS_DIR,
                        help=f"folder holding one folder per model (default {CARDS_DIR})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a card is missing or out of date")
    args = parser.parse_args(argv)
    known = snnzoo.list_models()
    unknown = [name for name in args.models if name not in known]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; registered: {', '.join(known)}")
    problems = []
    for name in args.models or sorted(MODEL_ARGS):
        try:
            if args.check:
                found = check_model_folder(name, args.out, device="meta")
                problems += found
                print(f"{name}: {'out of date' if found else 'up to date'}")
            else:
                folder = write_model_folder(name, args.out)
                print(f"{name}: wrote {folder}")
                if (folder / hub.WEIGHTS_FILENAME).is_file():
                    found = hub.validate_model_folder(folder)
                    problems += [f"{folder}: {problem}" for problem in found]
        except CardError as error:
            problems.append(f"{name}: {error}")
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    if problems and args.check:
        print("run `python scripts/make_model_cards.py` to update the cards", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
