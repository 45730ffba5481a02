"""The model card of a searched variant."""

from __future__ import annotations

import sys

from snnzoo.models.genotype import OPERATIONS, parse_genotype


def variant_card(name: str, best: dict, model, args) -> str:
    genotype = parse_genotype(best["genotype"], best["cell"])
    parameters = sum(p.numel() for p in model.parameters())
    edges = [f"| {i} -> {j} | forward | {OPERATIONS[op]} |" for i, j, op in genotype.forward_edges]
    edges += [f"| {i} -> {j} | feedback (t -> t+1) | {OPERATIONS[op]} |"
              for i, j, op in genotype.feedback_edges]
    top = "\n".join(f"| {place} | `{r['genotype']}` | {r['score']:.3f} |"
                    for place, r in enumerate(best["top"], 1))
    return f"""---
library_name: timm
license: mit
tags:
- snnzoo
- spiking-neural-network
- image-classification
- neural-architecture-search
---

# {name}

An SNASNet variant (Kim et al., *Neural Architecture Search for Spiking Neural Networks*,
ECCV 2022, arXiv:2201.10355) whose {best['cell']} cell was found by snnzoo's training-free
search on {best['dataset']}: the best of {best['scored']} untrained candidates
({best['sampled']} sampled{", every draw scored" if best.get("every_draw") else ", each distinct cell once"}),
scored by the sparsity-aware Hamming kernel of their spikes (score version
{best.get("score_version", 1)}).

**No weights are published for this variant**: it is an untrained architecture. Train it
with `python -m snnzoo.train {name} --dataset {best['dataset']}`.

## The cell

Genotype `{best['genotype']}` ({best['cell']} cell), score {best['score']:.3f}.

![cell](cell.png)

| edge | kind | operation |
|---|---|---|
{chr(10).join(edges)}

## Usage

```python
import snnzoo
model = snnzoo.create_model("{name}")
```

`snnzoo.create_model` registers the variant from this folder when it lies in the variants
directory (`$SNNZOO_VARIANTS_DIR`, default `~/.cache/snnzoo/variants`); `snnzoo.load_variants()`
does so for plain `timm.create_model`.

## The search (measured here)

```
python -m snnzoo.search {" ".join(sys.argv[1:])}
```

Width multiplier {args.width}, batch {args.batch_size}, {args.repeat} repeats, T={args.timesteps},
seed {args.seed}; images {"with the training transform" if args.augment else "unaugmented"};
each repeat {"from the state the last one left" if args.carry_state else "from rest"}; the
network built here has {parameters:,} parameters.

| rank | genotype | score |
|---|---|---|
{top}

## Citation

```bibtex
@inproceedings{{kim2022neural,
  title={{Neural Architecture Search for Spiking Neural Networks}},
  author={{Kim, Youngeun and Li, Yuhang and Park, Hyoungseob and Venkatesha, Yeshwanth and Panda, Priyadarshini}},
  booktitle={{European Conference on Computer Vision (ECCV)}},
  year={{2022}}
}}
```
"""
