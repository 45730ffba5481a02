"""What snnzoo's two deliberate departures from the authors' search procedure change, on make
demo's search (docs/search.md gives the reasons for them):

- each distinct cell scored once (default) against every draw scored, repeats included
  (--every-draw, the authors'): the winner of each, and how far apart two draws of one cell
  score, next to how far apart different cells score;
- each repeat batch from rest (default) against from the state the previous batch left
  (--carry-state, the authors'): Kendall's tau between the two scores over the candidates,
  and the winner of each.

    python benchmarks/search_choices.py
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, add_smoke_option, device_name, parse_benchmark_args, versions  # noqa: E402
from score_change import DEMO  # noqa: E402
from score_vs_accuracy import kendall_tau  # noqa: E402

from snnzoo.data import dataset_info, load_dataset  # noqa: E402
from snnzoo.search import run as search_run  # noqa: E402
from snnzoo.search.__main__ import parse_args as search_options  # noqa: E402


def best(records: list[dict]) -> dict:
    return search_run.ranking(records)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-csv", action="store_true", help="print only, record nothing")
    add_smoke_option(parser)
    options = parse_benchmark_args(parser, argv)
    args = search_options([*DEMO, "--out", "/nonexistent/search_choices"])
    args.channels_last = search_run.channels_last_by_default(torch.device("cpu"))
    if options.smoke:
        args.num_search, args.batch_size, args.width = 4, 8, 0.125
    info = dataset_info(args.dataset)
    model_args = search_run.model_args_for(args, info)
    dataset = load_dataset(args.dataset, "train", augment=True)
    device = torch.device("cpu")

    def score_all(candidates, **settings):
        scored = []
        for candidate in candidates:
            scored.append(search_run.score_candidate(
                candidate, model_args, dataset, argparse.Namespace(**{**vars(args), **settings}),
                device))
            print(f"{settings} {json.dumps(scored[-1])}", file=sys.stderr, flush=True)
        return scored

    draws = score_all(search_run.all_draws(args), carry_state=False)
    distinct = [draws[c.index] for c in search_run.unique_candidates(args)]
    carried = score_all(search_run.unique_candidates(args), carry_state=True)
    by_cell: dict[str, list[float]] = {}
    for record in draws:
        by_cell.setdefault(record["genotype"], []).append(record["score"])
    repeated = {g: s for g, s in by_cell.items() if len(s) > 1 and all(map(math.isfinite, s))}
    finite = [(a["score"], b["score"]) for a, b in zip(distinct, carried)
              if math.isfinite(a["score"]) and math.isfinite(b["score"])]
    summary = dict(
        draws=len(draws), distinct=len(distinct),
        every_draw=dict(
            winner_default=best(distinct)["genotype"], winner_every_draw=best(draws)["genotype"],
            repeated_cells={g: s for g, s in repeated.items()},
            spread_within_cell=statistics.mean(statistics.pstdev(s) for s in repeated.values())
            if repeated else None,
            spread_across_cells=statistics.pstdev([r["score"] for r in distinct
                                                   if math.isfinite(r["score"])])),
        carry_state=dict(
            winner_default=best(distinct)["genotype"], winner_carry_state=best(carried)["genotype"],
            kendall_tau=kendall_tau(*zip(*finite)) if finite else None, candidates=len(finite),
            mean_abs_difference=statistics.mean(abs(a - b) for a, b in finite) if finite else None))
    print(json.dumps(summary, indent=2))
    if not options.no_csv:
        (RESULTS_DIR / "search_choices.json").write_text(json.dumps(dict(
            setting=f"make demo's search ({' '.join(DEMO)}, seed {args.seed}, {args.cell} cells)",
            device=device_name(device), versions=versions(), **summary,
            rows=dict(draws=draws, carried=carried)), indent=2) + "\n")


if __name__ == "__main__":
    main()
