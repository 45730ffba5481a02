"""How much the score fix changed the search: snnzoo's earlier score against the authors'.

Until score version 2, snnzoo divided the Hamming distance by (m + 1e-3) instead of the
authors' (N m + 1e-3), m being the rows' firing-rate mismatch, and scored unaugmented images.
For the first --draws distinct candidates of a search (make demo's settings by default) this
computes, on the same networks:
- formula: the earlier and the authors' kernel on the same spikes (unaugmented batches);
- procedure: the earlier search (earlier kernel, unaugmented) against today's default
  (authors' kernel, training-transformed batches), i.e. what `python -m snnzoo.search` gave
  before and gives now;
then Kendall's tau between them, and the winner of make demo's 40 draws under each.

    python benchmarks/score_change.py [--draws 120]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, add_smoke_option, device_name, for_each_spike_step,  # noqa: E402
                    parse_benchmark_args, versions)
from score_vs_accuracy import kendall_tau  # noqa: E402

from snnzoo.data import dataset_info, first_batch, load_dataset  # noqa: E402
from snnzoo.kernels.spike_kernel import HammingKernelScorer  # noqa: E402
from snnzoo.models.snasnet import SNASNet  # noqa: E402
from snnzoo.search import run as search_run  # noqa: E402
from snnzoo.search.__main__ import parse_args as search_options  # noqa: E402

DEMO = ["--num-search", "40", "--width", "0.5", "--batch-size", "128"]  # the Makefile's demo


def earlier_term(spikes: torch.Tensor) -> np.ndarray:
    """The term snnzoo's score version 1 added: N - 0.5 H / (m + 1e-3), float32."""
    x = (spikes.reshape(spikes.shape[0], -1) > 0).float()
    neurons = x.shape[1]
    rate = (x.sum(1) / neurons).unsqueeze(1)
    mismatch = rate @ (1 - rate.t()) + (1 - rate) @ rate.t()
    distance = x @ (1 - x.t()) + (1 - x) @ x.t()
    return (neurons - 0.5 / (mismatch + 1e-3) * distance).numpy()


def both_scores(model, images) -> tuple[float, float]:
    """(earlier, authors') log|det(K / L)| of one forward pass, from the same spikes."""
    earlier = np.zeros((images.shape[0],) * 2)
    authors = HammingKernelScorer("torch")

    def add(spikes_t):
        nonlocal earlier
        earlier = earlier + earlier_term(spikes_t)
        authors.add(spikes_t, binary=True)

    for_each_spike_step(model, images, add)
    sign, value = np.linalg.slogdet(earlier / authors.count)
    return (float(value) if sign != 0 else -math.inf), authors.score()


def candidate_scores(candidate, model_args, plain, augmented, args) -> dict:
    """The three scores of one candidate, seeded as the search seeds it."""
    seed = args.seed * search_run.SEED_MULTIPLIER + candidate.index
    torch.manual_seed(seed)
    model = SNASNet(genotype=candidate.genotype, **model_args).train()
    model.to(memory_format=torch.channels_last)
    pairs = []
    for repeat in range(args.repeat):
        images, _ = first_batch(plain, args.batch_size, seed=seed * 16 + repeat)
        torch.manual_seed(seed * 16 + repeat)
        pairs.append(both_scores(model, images))
    earlier, authors_plain = (float(np.mean(values)) for values in zip(*pairs))
    today = search_run.score_candidate(candidate, model_args, augmented, args, torch.device("cpu"))
    return dict(index=candidate.index, genotype=candidate.genotype, earlier=earlier,
                authors_plain=authors_plain, today=today["score"])


def winner(rows, key, draws) -> dict:
    eligible = [row for row in rows if row["index"] < draws and math.isfinite(row[key])]
    return max(eligible, key=lambda row: (row[key], -row["index"]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=120, help="distinct candidates to score")
    parser.add_argument("--no-csv", action="store_true", help="print only, record nothing")
    add_smoke_option(parser)
    options = parse_benchmark_args(parser, argv)
    args = search_options([*DEMO, "--out", "/nonexistent/score_change"])
    args.channels_last = True
    if options.smoke:
        options.draws, args.batch_size, args.width = 3, 8, 0.125
    args.num_search = 100 * options.draws
    info = dataset_info(args.dataset)
    model_args = search_run.model_args_for(args, info)
    plain = load_dataset(args.dataset, "train")
    augmented = load_dataset(args.dataset, "train", augment=True)
    candidates = search_run.unique_candidates(args)[:options.draws]
    rows = []
    for number, candidate in enumerate(candidates, 1):
        rows.append(candidate_scores(candidate, model_args, plain, augmented, args))
        print(f"[{number}/{len(candidates)}] {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    finite = [row for row in rows if all(math.isfinite(row[k]) for k in ("earlier", "authors_plain", "today"))]
    summary = dict(
        candidates=len(rows), finite=len(finite),
        tau_formula=kendall_tau([r["earlier"] for r in finite], [r["authors_plain"] for r in finite]),
        tau_procedure=kendall_tau([r["earlier"] for r in finite], [r["today"] for r in finite]),
        demo_winner_before=winner(rows, "earlier", 40), demo_winner_now=winner(rows, "today", 40),
        winner_before=winner(rows, "earlier", math.inf), winner_now=winner(rows, "today", math.inf))
    print(json.dumps(summary, indent=2))
    if not options.no_csv:
        (RESULTS_DIR / "score_change.json").write_text(json.dumps(dict(
            setting=f"make demo's search ({' '.join(DEMO)}, seed {args.seed}), the first "
                    f"{len(rows)} distinct {args.cell} candidates", device=device_name(
                torch.device("cpu")), versions=versions(), **summary, rows=rows), indent=2) + "\n")


if __name__ == "__main__":
    main()
