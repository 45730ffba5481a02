"""The model card of a searched variant."""

from __future__ import annotations

import sys

from snnzoo.cards import (ARXIV_ID, LICENSE, SEARCHED_TAGS, cell_edge_table, citation,
                          create_model_snippet, front_matter)
from snnzoo.models.genotype import parse_genotype


def variant_card(name: str, best: dict, model, args) -> str:
    """README.md of the variant `best` (best.json's entries) that the search `args` found."""
    body = [f"# {name}", "", *_what_it_is(name, best), *_cell(best), *_usage(name),
            *_search(best, model, args), *citation()]
    return front_matter(LICENSE, SEARCHED_TAGS) + "\n" + "\n".join(body)


def _what_it_is(name: str, best: dict) -> list[str]:
    scored = "every draw scored" if best.get("every_draw") else "each distinct cell once"
    return [f"An SNASNet variant (Kim et al., *Neural Architecture Search for Spiking Neural "
            f"Networks*, ECCV 2022, arXiv:{ARXIV_ID}) whose {best['cell']} cell was found by "
            f"snnzoo's training-free search on {best['dataset']}: the best of {best['scored']} "
            f"untrained candidates ({best['sampled']} sampled, {scored}), scored by the "
            f"sparsity-aware Hamming kernel of their spikes (score version "
            f"{best.get('score_version', 1)}).", "",
            f"**No weights are published for this variant**: it is an untrained architecture. "
            f"Train it with `python -m snnzoo.train {name} --dataset {best['dataset']}`.", ""]


def _cell(best: dict) -> list[str]:
    genotype = parse_genotype(best["genotype"], best["cell"])
    return ["## The cell", "",
            f"Genotype `{best['genotype']}` ({best['cell']} cell), score {best['score']:.3f}.", "",
            "![cell](cell.png)", "", *cell_edge_table(genotype), ""]


def _usage(name: str) -> list[str]:
    return ["## Usage", "", *create_model_snippet(name), "",
            "`snnzoo.create_model` registers the variant from this folder when it lies in the "
            "variants directory (`$SNNZOO_VARIANTS_DIR`, default `~/.cache/snnzoo/variants`); "
            "`snnzoo.load_variants()` does so for plain `timm.create_model`.", ""]


def _search(best: dict, model, args) -> list[str]:
    parameters = sum(p.numel() for p in model.parameters())
    images = "with the training transform" if args.augment else "unaugmented"
    start = "from the state the last one left" if args.carry_state else "from rest"
    precision = getattr(args, "precision", "fp32")  # fp32 unless the search says otherwise
    computed = "" if precision == "fp32" else f"; the candidates computed in {precision}"
    return ["## The search (measured here)", "",
            "```", f"python -m snnzoo.search {' '.join(sys.argv[1:])}", "```", "",
            f"Width multiplier {args.width}, batch {args.batch_size}, {args.repeat} repeats, "
            f"T={args.timesteps}, seed {args.seed}; images {images}; each repeat {start}; the "
            f"network built here has {parameters:,} parameters{computed}.", "",
            "| rank | genotype | score |", "|---|---|---|",
            *[f"| {place} | `{record['genotype']}` | {record['score']:.3f} |"
              for place, record in enumerate(best["top"], 1)], ""]
