"""Does the training-free score predict accuracy? Kendall's tau between scores of random
cells and their accuracy after the same training on the full Fashion-MNIST training set.

Cells: --cells random cells, half forward and half backward, drawn as the search draws them
(distinct genotypes). Each is trained by ``python -m snnzoo.train`` with the same options
(snasnet_fmnist's macro network at --width channels, the authors' recipe as their code ran
it, --epochs on all 60,000 training images), then measured on the 10,000 test images. The
first --twice cells of each kind are trained with a second seed: how much two seeds of one
cell differ bounds what any score can predict.

Scores, each of the untrained network of the trained architecture (the search's own
settings: batch 256, 2 repeats, the training transform, T = 5):
- SAHD: snnzoo.search's score, the authors' sparsity-aware Hamming kernel;
- HD: the plain Hamming kernel N - H, without the sparsity term (the paper's ablation);
- parameters: the parameter count;
- random: a seeded uniform draw per cell (what chance gives).

For each, Kendall's tau-b against the mean test accuracy of the cell's seeds, with a 95%
bootstrap interval over cells. Resumable: every finished training run is appended to
benchmarks/results/score_vs_accuracy_runs.jsonl at once (the run folders under --runs keep
checkpoints, so an interrupted run continues where it stopped); scores are recomputed by
the analysis, which writes score_vs_accuracy.json and score_vs_accuracy.png.

    python benchmarks/score_vs_accuracy.py               # train what is missing, then analyse
    python benchmarks/score_vs_accuracy.py --train-only  # (e.g. in the background)
    python benchmarks/score_vs_accuracy.py --analyse-only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, add_smoke_option, device_name, for_each_spike_step,  # noqa: E402
                    parse_benchmark_args, versions)

from snnzoo.data import dataset_info, first_batch, load_dataset  # noqa: E402
from snnzoo.kernels.spike_kernel import pairwise_hamming  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet  # noqa: E402
from snnzoo.search import run as search_run  # noqa: E402
from snnzoo.search.space import sample_genotypes  # noqa: E402

RUNS_FILE = RESULTS_DIR / "score_vs_accuracy_runs.jsonl"
RESULT_FILE = RESULTS_DIR / "score_vs_accuracy.json"
PLOT_FILE = RESULTS_DIR / "score_vs_accuracy.png"
BOOTSTRAP_SAMPLES = 2000


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (ties counted in neither pair class)."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def bootstrap_interval(x, y, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of tau over BOOTSTRAP_SAMPLES resamplings of the cells."""
    generator = np.random.default_rng(seed)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    taus = []
    for _ in range(BOOTSTRAP_SAMPLES):
        pick = generator.integers(0, len(x), len(x))
        taus.append(kendall_tau(x[pick], y[pick]))
    low, high = np.percentile(taus, [2.5, 97.5])
    return float(low), float(high)


def study_cells(count: int, seed: int) -> list[tuple[str, str]]:
    """(genotype, cell kind): count // 2 distinct forward and backward networks each, drawn as
    the search draws them. A backward draw without feedback edges computes what the forward
    cell of its genotype computes (with the same weights): one already among the forward cells
    is passed over, so that no network is counted twice."""
    cells = []
    for kind in ("forward", "backward"):
        seen: list[str] = []
        for genotype in sample_genotypes(kind, 100 * count, seed):
            forward_twin = not genotype.has_feedback and (str(genotype), "forward") in cells
            if str(genotype) not in seen and not forward_twin:
                seen.append(str(genotype))
            if len(seen) == count // 2:
                break
        cells += [(genotype, kind) for genotype in seen]
    return cells


def study_jobs(args) -> list[dict]:
    """One training run per cell and seed: seed 0 for all, seed 1 for the first --twice of
    each kind."""
    jobs = []
    for genotype, kind in study_cells(args.cells, args.seed):
        position = sum(1 for job in jobs if job["cell"] == kind and job["seed"] == 0)
        for seed in ((0, 1) if position < args.twice else (0,)):
            jobs.append(dict(genotype=genotype, cell=kind, seed=seed))
    return jobs


def _job_key(job: dict) -> tuple:
    return job["genotype"], job["cell"], job["seed"]


def read_runs(path: Path = RUNS_FILE) -> dict[tuple, dict]:
    """Finished training runs by (genotype, cell, seed); a line cut short by a kill is skipped."""
    runs = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            runs[_job_key(record)] = record
    return runs


def train_options(args, job: dict, out: Path) -> list[str]:
    return ["snasnet_fmnist", "--dataset", args.dataset, "--genotype", job["genotype"],
            "--cell", job["cell"], "--width", str(args.width), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--seed", str(job["seed"]),
            "--eval-batch-size", "1000", "--checkpoint-minutes", "2", "--device", args.device,
            "--out", str(out), *(["--resume"] if out.exists() else []),
            *(["--max-steps", "2"] if args.smoke else [])]


def train_missing(args):
    """Train every job not yet in args.runs_file, appending each result as it finishes."""
    from snnzoo import train as train_module

    done = read_runs(args.runs_file)
    worker, workers = args.worker
    missing = [job for number, job in enumerate(study_jobs(args))
               if _job_key(job) not in done and number % workers == worker]
    print(f"{len(done)} training runs done, {len(missing)} to go", file=sys.stderr)
    for number, job in enumerate(missing, 1):
        out = args.runs / f"{job['cell']}_{job['genotype'].replace(' ', '')}_seed{job['seed']}"
        print(f"[{number}/{len(missing)}] {job}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        train_module.main(train_options(args, job, out))
        results = json.loads((out / "results.json").read_text())
        record = dict(job, top1=results["top1"], images=results["images"],
                      width=args.width, epochs=args.epochs, batch_size=args.batch_size,
                      seconds=round(time.perf_counter() - started, 1),
                      device=device_name(torch.device(args.device)), versions=versions())
        with open(args.runs_file, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def plain_hamming_score(model, images) -> float:
    """log|det(K / L)| with K += N - H over every LIF output: the paper's HD kernel."""
    kernel, count = torch.zeros((images.shape[0],) * 2, dtype=torch.float64), [0]

    def add(spikes_t):
        kernel.add_(spikes_t[0].numel() - pairwise_hamming(spikes_t).double())
        count[0] += 1

    for_each_spike_step(model, images, add)
    sign, value = torch.linalg.slogdet(kernel / count[0])
    return value.item() if sign != 0 else -math.inf


def search_settings(args, kind: str) -> argparse.Namespace:
    """The search's own defaults (python -m snnzoo.search), for this data set and cell kind."""
    from snnzoo.search.__main__ import parse_args
    search = parse_args(["--dataset", args.dataset, "--cell", kind, "--seed", str(args.seed),
                         "--device", args.device])
    search.channels_last = search_run.channels_last_by_default(torch.device(args.device))
    if args.score_batch_size:
        search.batch_size = args.score_batch_size
    return search


def cell_scores(args, genotype: str, kind: str, train_set, info, index: int) -> dict:
    """The four scores of the untrained network that the study trains (snasnet_fmnist with
    cell 1 --width channels wide, as ``snnzoo.train --width`` builds it), scored as candidate
    `index` of a search seeded with args.seed: SAHD by the search's score_candidate, HD on
    the same weights and batches, the parameter count and a seeded random draw."""
    search = search_settings(args, kind)
    model_args = search_run.model_args_for(search, info)
    model_args.update(width=args.width, classifier_width=MODEL_ARGS["snasnet_fmnist"]["classifier_width"])
    device = torch.device(args.device)
    candidate = search_run.Candidate(index, genotype)
    sahd = search_run.score_candidate(candidate, model_args, train_set, search, device)
    seed = search.seed * search_run.SEED_MULTIPLIER + index  # as score_candidate seeds
    torch.manual_seed(seed)
    model = SNASNet(genotype=genotype, **model_args).to(device).train()
    hd = []
    for repeat in range(search.repeat):
        images, _ = first_batch(train_set, search.batch_size, seed=seed * 16 + repeat)
        torch.manual_seed(seed * 16 + repeat)
        hd.append(plain_hamming_score(model, images.to(device)))
    return dict(sahd=sahd["score"], hd=float(np.mean(hd)),
                parameters=sum(p.numel() for p in model.parameters()),
                random=float(np.random.default_rng([args.seed, index]).uniform()))


def analyse(args):
    runs = read_runs(args.runs_file)
    info = dataset_info(args.dataset)
    train_set = load_dataset(args.dataset, "train", augment=True)
    rows = []
    for index, (genotype, kind) in enumerate(study_cells(args.cells, args.seed)):
        accuracies = {seed: runs[(genotype, kind, seed)]["top1"] for seed in (0, 1)
                      if (genotype, kind, seed) in runs}
        if not accuracies:
            continue
        print(f"scoring {kind} {genotype}", file=sys.stderr, flush=True)
        scores = cell_scores(args, genotype, kind, train_set, info, index)
        rows.append(dict(genotype=genotype, cell=kind, top1=float(np.mean(list(accuracies.values()))),
                         top1_by_seed=accuracies, **scores))
    summary = summarise(rows)
    args.result_file.write_text(json.dumps(dict(setting=setting(args), device=device_name(
        torch.device(args.device)), versions=versions(), **summary, rows=rows), indent=2) + "\n")
    plot(rows, summary, args.plot_file)
    print(json.dumps(summary, indent=2))


SCORES = {"sahd": "SAHD (snnzoo's search score)", "hd": "HD (no sparsity term)",
          "parameters": "parameter count", "random": "random"}


def summarise(rows: list[dict]) -> dict:
    accuracy = [row["top1"] for row in rows]
    taus = {}
    for key in SCORES:
        finite = [(row[key], row["top1"]) for row in rows if math.isfinite(row[key])]
        x, y = zip(*finite) if finite else ((), ())
        taus[key] = dict(tau=kendall_tau(x, y), interval=bootstrap_interval(x, y),
                         cells=len(finite))
    twice = [row["top1_by_seed"] for row in rows if len(row["top1_by_seed"]) == 2]
    seed_gaps = [abs(pair[0] - pair[1]) for pair in twice]
    seeds_tau = kendall_tau([pair[0] for pair in twice], [pair[1] for pair in twice])
    return dict(cells=len(rows), kendall_tau=taus,
                accuracy=dict(min=min(accuracy), max=max(accuracy), spread=max(accuracy) - min(accuracy),
                              std=float(np.std(accuracy))),
                seeds=dict(cells=len(twice), mean_gap=float(np.mean(seed_gaps)) if twice else None,
                           max_gap=max(seed_gaps) if twice else None, tau_between_seeds=seeds_tau))


def setting(args) -> str:
    return (f"{args.cells} cells ({args.cells // 2} forward, {args.cells // 2} backward), "
            f"snasnet_fmnist at width {args.width}, {args.epochs} epoch(s) of batch "
            f"{args.batch_size} on all of {args.dataset}'s training set, the authors' recipe as "
            f"run; top-1 on its test set; {args.twice} cells of each kind with two seeds")


def plot(rows, summary, path: Path):
    from snnzoo.viz import save_figure
    import matplotlib.figure
    figure = matplotlib.figure.Figure(figsize=(10, 8))
    for place, (key, title) in enumerate(SCORES.items(), 1):
        axes = figure.add_subplot(2, 2, place)
        for kind, marker in (("forward", "o"), ("backward", "s")):
            points = [(row[key], row["top1"]) for row in rows
                      if row["cell"] == kind and math.isfinite(row[key])]
            if points:
                axes.scatter(*zip(*points), marker=marker, label=f"{kind} cells", alpha=0.8)
        for row in rows:  # a cell trained with two seeds: both accuracies, joined
            if len(row["top1_by_seed"]) == 2 and math.isfinite(row[key]):
                axes.plot([row[key]] * 2, list(row["top1_by_seed"].values()), color="0.6",
                          linewidth=1, zorder=0)
        tau = summary["kendall_tau"][key]
        axes.set_title(f"{title}\ntau {tau['tau']:.2f} [{tau['interval'][0]:.2f}, "
                       f"{tau['interval'][1]:.2f}]", fontsize=10)
        axes.set_xlabel(title.split(" (")[0])
        axes.set_ylabel("test top-1 %")
        axes.legend(fontsize=8, title="grey: two seeds", title_fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def _worker(text: str) -> tuple[int, int]:
    worker, _, workers = text.partition("/")
    if not (worker.isdigit() and workers.isdigit() and int(worker) < int(workers)):
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 0 <= K < N, e.g. 0/2")
    return int(worker), int(workers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--cells", type=int, default=24, help="cells, half of each kind")
    parser.add_argument("--twice", type=int, default=4,
                        help="cells of each kind trained with a second seed")
    parser.add_argument("--width", type=int, default=8, help="channels of cell 1")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="draws the cells; seeds the scores")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=Path, default=Path("runs/score_vs_accuracy"),
                        help="training run folders (checkpoints for resuming)")
    parser.add_argument("--worker", type=_worker, default=(0, 1), metavar="K/N",
                        help="train only every N-th run, from the K-th (0-based): N processes "
                             "share the training (default: 0/1, all)")
    phase = parser.add_mutually_exclusive_group()
    phase.add_argument("--train-only", action="store_true")
    phase.add_argument("--analyse-only", action="store_true")
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    args.runs_file, args.result_file, args.plot_file = RUNS_FILE, RESULT_FILE, PLOT_FILE
    args.score_batch_size = None  # the search's own
    if args.smoke:  # in a folder of its own: never resumes, reads or spoils the study's files
        import tempfile
        args.dataset, args.cells, args.twice, args.width = "fashion-mnist-sample", 2, 1, 2
        args.runs = Path(tempfile.mkdtemp(prefix="score_vs_accuracy_smoke_"))
        args.runs_file, args.result_file, args.plot_file = (
            args.runs / RUNS_FILE.name, args.runs / RESULT_FILE.name, args.runs / PLOT_FILE.name)
        args.score_batch_size = 16
    if not args.analyse_only:
        train_missing(args)
    if not args.train_only:
        analyse(args)


if __name__ == "__main__":
    main()
