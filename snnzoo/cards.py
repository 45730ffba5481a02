"""The pieces that every snnzoo model card shares, written once: front matter, the usage
snippet, the table of a cell's edges and the citation.

Each card is put together by the code that knows its facts: scripts/make_model_cards.py (the
registered models), snnzoo.search.card (a searched variant), snnzoo.train.training_card (a
training run) and snnzoo.hub.save_pretrained (the minimal card of a folder saved without one).
"""

from __future__ import annotations

import re

import yaml

from snnzoo._messages import format_count, format_energy

__all__ = ["TAGS", "SEARCHED_TAGS", "LICENSE", "ARXIV_ID", "CITATION", "front_matter",
           "split_front_matter", "split_card", "create_model_snippet", "cell_edge_table",
           "energy_table", "citation"]

TAGS = ("snnzoo", "spiking-neural-network", "image-classification")
SEARCHED_TAGS = TAGS + ("neural-architecture-search",)  # a cell found by architecture search
LICENSE = "mit"  # snnzoo's own code and the SNASNet authors' both
ARXIV_ID = "2201.10355"
CITATION = """@inproceedings{kim2022neural,
  title     = {Neural Architecture Search for Spiking Neural Networks},
  author    = {Kim, Youngeun and Li, Yuhang and Park, Hyoungseob and Venkatesha, Yeshwanth and
               Panda, Priyadarshini},
  booktitle = {European Conference on Computer Vision (ECCV)},
  year      = {2022},
  doi       = {10.1007/978-3-031-20053-3_3},
  eprint    = {2201.10355},
  archivePrefix = {arXiv}
}"""
# A block between '---' lines at the very top; lenient about CRLF and trailing blanks.
FRONT_MATTER = re.compile(r"---\r?\n(.*?)\r?\n---[ \t]*(\r?\n|$)", re.DOTALL)


def front_matter(license: str, tags=TAGS, *, datasets=(), pipeline_tag: str | None = None,
                 extra: dict | None = None) -> str:
    """The YAML front matter of a card, '---' lines included: library_name, license, tags,
    then datasets, pipeline_tag and the `extra` entries (metrics, model-index) where given."""
    metadata = {"library_name": "timm", "license": license, "tags": list(tags)}
    if datasets:
        metadata["datasets"] = list(datasets)
    if pipeline_tag:
        metadata["pipeline_tag"] = pipeline_tag
    metadata.update(extra or {})
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n"


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the YAML text of a card's front matter, or None where it has none; the rest)."""
    match = FRONT_MATTER.match(text)
    if match is None:
        return None, text
    return match.group(1), text[match.end():]


def split_card(text: str) -> tuple[dict, str]:
    """(front matter, body) of a card; the front matter is {} where there is none."""
    metadata, body = split_front_matter(text)
    return (yaml.safe_load(metadata) or {}) if metadata is not None else {}, body


def create_model_snippet(name: str, pretrained: bool = False, eval_mode: bool = False) -> list[str]:
    """The lines of a python code block that builds the model with snnzoo.create_model."""
    arguments = f'"{name}", pretrained=True' if pretrained else f'"{name}"'
    return ["```python", "import snnzoo", "",
            f"model = snnzoo.create_model({arguments}){'.eval()' if eval_mode else ''}", "```"]


def cell_edge_table(genotype) -> list[str]:
    """The markdown table of a cell's edges (a Genotype): forward ones, then feedback ones."""
    from snnzoo.models.genotype import OPERATIONS
    from snnzoo.viz import OPERATION_DESCRIPTIONS

    lines = ["| edge | kind | operation | computes |", "|---|---|---|---|"]
    for edges, kind in ((genotype.forward_edges, "forward (same step)"),
                        (genotype.feedback_edges, "feedback (step t \u2192 t+1)")):
        lines += [f"| {source} \u2192 {target} | {kind} | {OPERATIONS[op]} | "
                  f"{OPERATION_DESCRIPTIONS[OPERATIONS[op]]} |" for source, target, op in edges]
    return lines


def energy_table(energy: dict) -> list[str]:
    """The markdown table of an energy report (snnzoo.energy.EnergyCounter.report), per layer
    and in total, per image: what each layer reads, its SynOps, MACs, the firing rate of its
    input, its energy, and the same network as an ANN's MACs and energy."""
    def row(name, layer, reads):
        rate = layer.get("input_firing_rate")
        return (f"| {name} | {reads} | {format_count(layer['synops'])} | "
                f"{format_count(layer['macs'])} | {'' if rate is None else f'{rate:.4f}'} | "
                f"{format_energy(layer['energy_pj'])} | {format_count(layer['ann_macs'])} | "
                f"{format_energy(layer['ann_energy_pj'])} |")

    lines = ["| layer | reads | SynOps | MACs | input firing rate | energy | ANN MACs | "
             "ANN energy |", "|---|---|--:|--:|--:|--:|--:|--:|"]
    lines += [row(f"`{name}`", layer, layer["reads"]) for name, layer in energy["layers"].items()]
    return lines + [row("**total**", energy, "")]


def citation() -> list[str]:
    """The citation section of a card: the SNASNet paper's BibTeX."""
    return ["## Citation", "", "```bibtex", CITATION, "```", ""]
