"""Write the generated parts of README.md and docs/ from benchmarks/results: never typed by hand.

A generated part of a page stands between ``<!-- BEGIN generated:NAME -->`` and
``<!-- END generated:NAME -->``; NAME is a function of this script's GENERATORS, which reads
the results and returns the Markdown. Pictures the pages show are copied into docs/images/.

    python scripts/docs_tables.py           # rewrite the parts
    python scripts/docs_tables.py --check   # exit 1 if a page is not what the results give
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
PICTURES = {"score_vs_accuracy.png": "score_vs_accuracy.png"}
BLOCK = re.compile(r"(<!-- BEGIN generated:(?P<name>[a-z_]+) -->\n)(?P<body>.*?)"
                   r"(<!-- END generated:(?P=name) -->)", re.S)


def _read(name: str):
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value, digits=2) -> str:
    return "-inf" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _pending(source: str) -> str:
    return f"*Not measured yet: `{source}` has not written its results.*"


def score_change() -> str:
    data = _read("score_change.json")
    if data is None:
        return _pending("benchmarks/score_change.py")
    before, now = data["demo_winner_before"], data["demo_winner_now"]
    rows = [["earlier kernel vs the authors' kernel, same images", f"{data['tau_formula']:.3f}"],
            ["earlier search (earlier kernel, plain images) vs today's default",
             f"{data['tau_procedure']:.3f}"]]
    return "\n".join([
        f"{data['setting']}; {data['finite']} of {data['candidates']} with finite scores. "
        f"{data['device']}, {data['versions']}.", "",
        _table(["compared", "Kendall's tau"], rows), "",
        f"Winner of make demo's 40 draws: `{before['genotype']}` before, `{now['genotype']}` now "
        f"({'the same cell' if before['genotype'] == now['genotype'] else 'another cell'}). "
        f"Over all {data['candidates']}: `{data['winner_before']['genotype']}` before, "
        f"`{data['winner_now']['genotype']}` now."])


def demo_top() -> str:
    data = _read("score_change.json")
    if data is None:
        return _pending("benchmarks/score_change.py")
    demo = sorted((row for row in data["rows"] if row["index"] < 40),
                  key=lambda row: (-row["today"] if math.isfinite(row["today"]) else math.inf,
                                   row["index"]))
    return _table(["rank", "genotype", "score", "index"],
                  [[place, f"`{row['genotype']}`", f"{row['today']:.3f}", row["index"]]
                   for place, row in enumerate(demo[:5], 1)])


def search_choices() -> str:
    data = _read("search_choices.json")
    if data is None:
        return _pending("benchmarks/search_choices.py")
    every, carry = data["every_draw"], data["carry_state"]
    rows = [["each distinct cell once (default) vs every draw (`--every-draw`)",
             f"`{every['winner_default']}`", f"`{every['winner_every_draw']}`", "-"],
            ["each batch from rest (default) vs carried state (`--carry-state`)",
             f"`{carry['winner_default']}`", f"`{carry['winner_carry_state']}`",
             f"{carry['kendall_tau']:.3f} over {carry['candidates']}"]]
    return "\n".join([
        f"{data['setting']}: {data['draws']} draws, {data['distinct']} distinct cells. "
        f"{data['device']}, {data['versions']}.", "",
        _table(["choice", "winner, default", "winner, authors'", "Kendall's tau"], rows), "",
        f"Two draws of one cell score {_number(every['spread_within_cell'], 3)} apart (mean "
        f"standard deviation over the {len(every['repeated_cells'])} cells drawn more than "
        f"once); different cells, {_number(every['spread_across_cells'], 3)}. Carrying the "
        f"state moves a candidate's score by {_number(carry['mean_abs_difference'], 3)} on "
        f"average."])


def score_vs_accuracy() -> str:
    data = _read("score_vs_accuracy.json")
    if data is None or "kendall_tau" not in data:
        return _pending("benchmarks/score_vs_accuracy.py")
    names = {"sahd": "SAHD, snnzoo's search score", "hd": "HD, no sparsity term",
             "parameters": "parameter count", "random": "random"}
    rows = [[name, f"{data['kendall_tau'][key]['tau']:.3f}",
             f"[{data['kendall_tau'][key]['interval'][0]:.3f}, "
             f"{data['kendall_tau'][key]['interval'][1]:.3f}]", data["kendall_tau"][key]["cells"]]
            for key, name in names.items()]
    accuracy, seeds = data["accuracy"], data["seeds"]
    cells = _table(["cell", "genotype", "top-1 % (seeds)", "SAHD", "HD", "parameters"],
                   [[row["cell"], f"`{row['genotype']}`",
                     " / ".join(f"{v:.2f}" for v in row["top1_by_seed"].values()),
                     _number(row["sahd"], 3), _number(row["hd"], 3), row["parameters"]]
                    for row in sorted(data["rows"], key=lambda row: -row["top1"])])
    return "\n".join([
        f"{data['setting']}. {data['device']}, {data['versions']}.", "",
        _table(["score", "Kendall's tau", "95% bootstrap interval", "cells"], rows), "",
        f"Accuracies span {accuracy['min']:.2f}-{accuracy['max']:.2f}% ({accuracy['spread']:.2f} "
        f"points, standard deviation {accuracy['std']:.2f}). Two seeds of one cell differ by "
        f"{seeds['mean_gap']:.2f} points on average (at most {seeds['max_gap']:.2f}) over "
        f"{seeds['cells']} cells; Kendall's tau between the two seeds' accuracies is "
        f"{seeds['tau_between_seeds']:.3f}, about as high as any score can reach here.", "",
        "![score against accuracy](images/score_vs_accuracy.png)", "",
        "<details><summary>Every cell</summary>", "", cells, "", "</details>"])


def check_finite() -> str:
    import csv
    path = RESULTS / "check_finite.csv"
    if not path.exists():
        return _pending("benchmarks/check_finite.py")
    rows = list(csv.DictReader(path.open()))
    return _table(["date", "device", "batch", "check off ms", "check on ms", "cost"],
                  [[row["date"][:10], row["device"], row["batch_size"],
                    f"{float(row['check_off_ms']):.1f}", f"{float(row['check_on_ms']):.1f}",
                    f"{float(row['cost_percent']):+.2f}%"] for row in rows])


def scorer_cpu() -> str:
    """The latest CPU run of benchmarks/scorer.py, one row per size."""
    import csv
    rows = [row for row in csv.DictReader((RESULTS / "scorer.csv").open())
            if "CPU" in row["device"]]
    if not rows:
        return _pending("benchmarks/scorer.py")
    latest = [row for row in rows if row["date"] == rows[-1]["date"]]
    by_size: dict = {}
    for row in latest:
        by_size.setdefault((row["batch_size"], row["neurons"]), {})[row["contender"][:3]] = row
    table = []
    for (batch, neurons), pair in by_size.items():
        a, b = pair["(a)"], pair["(b)"]
        table.append([f"{batch} x {neurons}", f"{float(a['median_ms']):.0f} ms",
                      f"{float(b['median_ms']):.0f} ms", f"{b['speedup_vs_a']}x",
                      f"{float(a['peak_mb']):.0f} / {float(b['peak_mb']):.0f}",
                      "yes" if b["agrees_with_a"] == "True" else "**no**"])
    return "\n".join([f"{latest[0]['date'][:10]}, {latest[0]['device']}, {latest[0]['versions']}:", "",
                      _table(["B x N", "(a) numpy path", "snnzoo auto", "speed",
                              "peak MiB (a) / snnzoo", "score equal (1e-6)"], table)])


def _csv_rows(name: str) -> list[dict]:
    import csv
    path = RESULTS / name
    return list(csv.DictReader(path.open())) if path.exists() else []


def _on_gpu(row: dict) -> bool:
    return "CPU" not in row["device"]


def _latest_runs(rows: list[dict], key) -> dict:
    """{key(row): the rows of the latest run (one date) with that key}, in first-seen order."""
    runs: dict = {}
    for row in rows:
        runs.setdefault(key(row), {}).setdefault(row["date"], []).append(row)
    return {name: by_date[max(by_date)] for name, by_date in runs.items()}


def _ms(value: str) -> str:
    milliseconds = float(value)
    return f"{milliseconds:.0f} ms" if milliseconds >= 100 else f"{milliseconds:.3g} ms"


def _run_line(row: dict) -> str:
    return f"{row['date'][:10]}, {row['device']}, {row['versions']}"


def _lif(on_gpu: bool) -> str:
    runs = _latest_runs([row for row in _csv_rows("lif.csv") if _on_gpu(row) == on_gpu],
                        lambda row: row["shape"])
    if not runs:
        return _pending("benchmarks/lif.py")
    contenders = list(dict.fromkeys(row["contender"] for run in runs.values() for row in run))
    ours = [name for name in contenders if "snnzoo" in name]
    table = []
    for shape, run in runs.items():
        for mode in dict.fromkeys(row["mode"] for row in run):
            by_name = {row["contender"]: row for row in run if row["mode"] == mode}
            cells = [_ms(by_name[name]["median_ms"])
                     + ("" if name.startswith("(a)") else f" ({float(by_name[name]['speedup_vs_a']):.1f}x)")
                     if name in by_name else "-" for name in contenders]
            memory = [by_name[name]["memory_vs_a"] if name in by_name else "-" for name in ours]
            table.append([f"[{shape.replace('x', ', ')}]", mode, *cells, *memory])
    first = next(iter(runs.values()))[0]
    return "\n".join([_run_line(first) + ", median ms (speed against (a)):", "",
                      _table(["size", "mode", *contenders, *(f"{name[:3]} memory vs (a)" for name in ours)],
                             table)])


def lif_cpu() -> str:
    """The latest CPU run of benchmarks/lif.py at each size."""
    return _lif(on_gpu=False)


def lif_gpu() -> str:
    """The latest GPU run of benchmarks/lif.py at each size."""
    return _lif(on_gpu=True)


def scorer_gpu() -> str:
    """The latest GPU run of benchmarks/scorer.py."""
    runs = _latest_runs([row for row in _csv_rows("scorer.csv") if _on_gpu(row)],
                        lambda row: (row["batch_size"], row["neurons"]))
    if not runs:
        return _pending("benchmarks/scorer.py --device cuda")
    contenders = list(dict.fromkeys(row["contender"] for run in runs.values() for row in run))
    table = [[f"{batch} x {neurons}",
              *(f"{_ms(row['median_ms'])} ({float(row['speedup_vs_a']):.2f}x)" for row in run),
              "yes" if all(row["agrees_with_a"] == "True" for row in run) else "**no**"]
             for (batch, neurons), run in runs.items()]
    first = next(iter(runs.values()))[0]
    return "\n".join([_run_line(first) + ":", "",
                      _table(["B x N", *contenders, "score equal"], table)])


def _runs_lines(rows: list[dict]) -> list[str]:
    """One line per distinct device and versions among rows (the CPU's model and flags are in
    the device), with the dates of their runs."""
    dates: dict = {}
    for row in rows:
        dates.setdefault((row["device"], row["versions"]), set()).add(row["date"][:10])
    return [f"- {device}, {versions}: {', '.join(sorted(days))}"
            for (device, versions), days in dates.items()]


def _rss(row: dict) -> str:
    return f"{float(row['peak_rss_mb']):.0f} MiB" if row.get("peak_rss_mb") else "-"


def models_cpu() -> str:
    """The latest CPU run of benchmarks/models.py for each model, width and batch, in one table
    (full and reduced widths together): (a)'s images per second, every other contender's speed
    against (a), and each one's peak RSS."""
    runs = _latest_runs([row for row in _csv_rows("models.csv") if not _on_gpu(row)],
                        lambda row: (row["model"], row["width"], row["batch_size"]))
    if not runs:
        return _pending("benchmarks/models.py")
    contenders = sorted({row["contender"] for run in runs.values() for row in run})
    table = []
    for (model, width, batch), run in sorted(runs.items(), key=lambda item: (
            item[0][0], -int(item[0][1]), int(item[0][2]))):
        for mode in dict.fromkeys(row["mode"] for row in run):
            by_name = {row["contender"]: row for row in run if row["mode"] == mode}
            cells = []
            for name in contenders:
                row = by_name.get(name)
                if row is None:
                    cells.append("-")
                    continue
                speed = (f"{float(row['images_per_s']):.1f} img/s" if name.startswith("(a)")
                         else f"{float(row['throughput_vs_a']):.2f}x")
                cells.append(f"{speed}, {_rss(row)}")
            table.append([model, width, batch, f"T={run[0]['timesteps']}", mode,
                          run[0]["date"][:10], *cells])
    rows = [row for run in runs.values() for row in run]
    return "\n".join(["Runs (CPU model and flags, threads, versions: dates):",
                      *_runs_lines(rows), "",
                      "Each cell: images per second for (a), speed against (a) for the others; "
                      "then the peak RSS of a process running that contender alone "
                      "(`-`: not measured in that run).", "",
                      _table(["model", "width", "batch", "steps", "mode", "date", *contenders],
                             table), ""])


def _search_setting(row: dict) -> tuple:
    """(width, cell type): a run supersedes earlier runs of the same setting, whatever else its
    description (the configuration column) says."""
    setting = re.search(r"width x([0-9.]+).*?(forward|backward) cells", row["config"])
    return (-float(setting[1]), setting[2]) if setting else (0.0, row["config"])


def _search(on_gpu: bool) -> str:
    runs = _latest_runs([row for row in _csv_rows("search.csv") if _on_gpu(row) == on_gpu],
                        _search_setting)
    if not runs:
        return _pending("benchmarks/search.py")
    table = []
    for _, run in sorted(runs.items()):
        by_name = {row["procedure"]: row for row in run}
        authors, ours = by_name["authors"], by_name["snnzoo"]
        bf16 = by_name.get("snnzoo bf16")
        rss = " / ".join(_rss(by_name[name]).removesuffix(" MiB") if name in by_name else "-"
                         for name in ("authors", "snnzoo", "snnzoo bf16"))
        table.append([run[0]["config"], run[0]["date"][:10], run[0]["candidates"],
                      f"{float(authors['median_s']):.3g}", f"{float(ours['median_s']):.3g}",
                      f"{float(ours['speedup']):.2f}x",
                      f"{float(bf16['speedup']):.2f}x" if bf16 else "-", rss,
                      ours["largest_score_difference"] or "-",
                      bf16["largest_score_difference"] if bf16 else "-"])
    rows = [row for run in runs.values() for row in run]
    return "\n".join(["Runs:", *_runs_lines(rows), "",
                      _table(["configuration", "date", "candidates", "authors s / candidate",
                              "snnzoo s / candidate", "speed", "snnzoo bf16 speed",
                              "peak RSS MiB: authors / snnzoo / bf16",
                              "largest relative score difference",
                              "bf16: largest relative score difference (not checked)"],
                             table)])


def search_cpu() -> str:
    """The latest CPU run of benchmarks/search.py for each configuration."""
    return _search(on_gpu=False)


def search_gpu() -> str:
    """The latest GPU run of benchmarks/search.py for each configuration."""
    return _search(on_gpu=True)


def models_gpu() -> str:
    """The GPU run of benchmarks/models.py, whose table scripts/gpu_check.sh printed into
    benchmarks/results/h100/ (that run's training rows were refused by models.csv)."""
    pages = sorted((RESULTS / "h100").glob("models_*.md"))
    if not pages:
        return _pending("benchmarks/models.py --device cuda")
    lines = [line for line in pages[-1].read_text().splitlines() if line.strip()]
    return "\n".join([lines[0], "", *(line for line in lines if line.startswith("|"))])


CARDS = ROOT / "model_cards"
WEIGHTS_NOTE = {"snasnet_cifar10": "not published: train or convert",
                "snasnet_cifar100": "not published: convert the authors' `save_cifar100_bw.pth.tar`"}


def _dataset_of(card_folder: Path) -> str:
    """The display name of the data set a model card names (its front matter's datasets)."""
    from snnzoo.cards import split_card
    from snnzoo.data import DATASETS

    hub_id = split_card((card_folder / "README.md").read_text())[0]["datasets"][0]
    return next(info.title for info in DATASETS.values()
                if info.hub_id == hub_id and not info.name.endswith("-sample"))


def _models_table(card_link: str) -> str:
    """The registered models as their model_cards/ folders describe them; the accuracy is the
    folder's results.json, the parameters those of the model built on the meta device."""
    import torch

    import snnzoo

    rows = []
    for folder in sorted(CARDS.iterdir()):
        config = json.loads((folder / "config.json").read_text())
        arguments = config["model_args"]
        with torch.device("meta"):
            parameters = sum(p.numel() for p in snnzoo.create_model(folder.name).parameters())
        weights = WEIGHTS_NOTE.get(folder.name, "not published")
        if (folder / "results.json").exists():
            results = json.loads((folder / "results.json").read_text())
            weights = (f"**{results['top1']:.2f}%** top-1 on the {_dataset_of(folder)} "
                       f"{results['split']} set " + card_link.format(name=folder.name))
        size = "x".join(map(str, [arguments["in_chans"], *arguments["img_size"]]))
        rows.append([folder.name, arguments["genotype"], arguments["cell"], arguments["width"],
                     size, f"{config['num_classes']} / "
                     f"{config['num_classes'] * arguments['neurons_per_class']}",
                     f"{parameters:,}", weights])
    return _table(["name", "genotype", "cell", "width", "input", "classes / output neurons",
                   "parameters", "weights"], rows)


def models_table() -> str:
    """The README's table of models, each with a link to its card."""
    return _models_table("([card](model_cards/{name}/README.md))")


def models_table_docs() -> str:
    """The models page's table of models (the cards live outside the site)."""
    return _models_table("(see below)")


def speed_headline() -> str:
    """The README's speed paragraph: the best ratios of the latest CPU runs."""
    models = _latest_runs([row for row in _csv_rows("models.csv") if not _on_gpu(row)],
                          lambda row: (row["model"], row["width"], row["batch_size"]))
    search = _latest_runs([row for row in _csv_rows("search.csv") if not _on_gpu(row)],
                          _search_setting)
    lif = _latest_runs([row for row in _csv_rows("lif.csv") if not _on_gpu(row)],
                       lambda row: row["shape"])
    if not (models and search and lif):
        return _pending("make bench")
    quick = [row for row in models[("snasnet_cifar100", "32", "8")]  # float32, equal results
             if "snnzoo" in row["contender"] and "bf16" not in row["contender"]]
    best = {mode: max((row for row in quick if row["mode"] == mode),
                      key=lambda row: float(row["throughput_vs_a"])) for mode in ("inference", "training")}
    candidate = next(row for row in search[(-0.25, "backward")] if row["procedure"] == "snnzoo")
    neuron = [float(row["speedup_vs_a"]) for run in lif.values() for row in run
              if "snnzoo" in row["contender"]]
    return textwrap.fill(f"On one CPU thread ({quick[0]['device'].split(',')[0]}), against the authors' "
            f"per-timestep network in float32, with the same results: inference of "
            f"snasnet_cifar100 at width 32 **{float(best['inference']['throughput_vs_a']):.2f}x** "
            f"({best['inference']['contender'][4:]}), a training step "
            f"{float(best['training']['throughput_vs_a']):.2f}x ({best['training']['contender'][4:]}), "
            f"a search candidate at a quarter of snasnet_cifar10's width "
            f"{float(candidate['speedup']):.2f}x; the fused LIF neuron {min(neuron):.1f}-"
            f"{max(neuron):.1f}x a per-timestep loop.", width=95)


def _met(met: bool) -> str:
    return "yes" if met else "**no**"


def _provenance(part: dict) -> str:
    return f"{part['device']}; {part['versions']}; {part['date'][:10]}"


def precision_fidelity() -> str:
    """bf16 against fp32 on Fashion-MNIST (benchmarks/precision.py)."""
    data = _read("precision.json")
    if not data:
        return _pending("benchmarks/precision.py")
    rows, runs = [], []
    if "evaluate" in data:
        part = data["evaluate"]
        rows.append(["snasnet_fmnist's published weights, test top-1 (10,000 images)",
                     f"{part['fp32']['top1']:.2f}%", f"{part['bf16']['top1']:.2f}%",
                     f"{part['top1_difference_points']:+.2f} points; {part['changed_predictions']} "
                     f"predictions change", "within 0.2 points", _met(part["target_met"])])
        runs.append(f"- evaluation: {_provenance(part)}")
    if "search" in data:
        part = data["search"]
        tau = part["kendall_tau_b"]
        settings = part["settings"]
        relative = part["relative_difference"]
        rows.append([f"search scores of {part['tau_candidates']} candidates: Kendall tau-b", "", "",
                     f"{tau:.3f}" if tau is not None else "-", "at least 0.9",
                     _met(part["tau_target_met"])])
        rows.append([f"{part['of_searches']} seeded searches of {settings['draws_per_search']} "
                     f"draws: the same winner", "", "", f"{part['same_winner']} of "
                     f"{part['of_searches']}", "at least 9 of 10", _met(part["winner_target_met"])])
        runs.append(f"- search: {_provenance(part)}; {settings['base_model']}'s macro network at "
                    f"width {settings['model_args']['width']}, batch {settings['batch_size']}, "
                    f"{settings['repeat']} repeats, T={settings['timesteps']}, {settings['cell']} "
                    f"cells, on {settings['dataset']}'s training images; relative score "
                    f"difference: median {relative['median']:.1e}, largest "
                    f"{relative['largest']:.1e}")
    if "train" in data:
        part = data["train"]
        for fp32, bf16 in zip(part["runs"]["fp32"], part["runs"]["bf16"]):
            rows.append([f"the same short training, seed {fp32['seed']}: final test top-1",
                         f"{fp32['top1']:.2f}%", f"{bf16['top1']:.2f}%",
                         f"{bf16['top1'] - fp32['top1']:+.2f} points", "side by side", "-"])
        runs.append(f"- training: {_provenance(part)}; `{part['settings']['recipe']}`")
    table = _table(["measure", "fp32", "bf16", "difference", "target", "met"], rows)
    return table + "\n\n" + "\n".join(runs) + "\n"


def _best(by_name: dict, names) -> str:
    """The fastest of the named contenders, as "1.23x (d), 456 MiB", or "-"."""
    found = [by_name[name] for name in names if name in by_name]
    if not found:
        return "-"
    row = max(found, key=lambda row: float(row["throughput_vs_a"]))
    return f"{float(row['throughput_vs_a']):.2f}x {row['contender'][:3]}, {_rss(row)}"


def precision_speed() -> str:
    """The latest CPU run of benchmarks/models.py per model and width: snnzoo's fastest fp32
    and bf16 contenders and SpikingJelly 2.0 against the authors' network (a)."""
    runs = _latest_runs([row for row in _csv_rows("models.csv") if not _on_gpu(row)],
                        lambda row: (row["model"], row["width"], row["batch_size"]))
    runs = {key: run for key, run in runs.items()
            if any("bf16" in row["contender"] for row in run)}
    if not runs:
        return _pending("benchmarks/models.py (with its bf16 contenders)")
    table = []
    for (model, width, batch), run in sorted(runs.items(), key=lambda item: (
            item[0][0], -int(item[0][1]), int(item[0][2]))):
        for mode in dict.fromkeys(row["mode"] for row in run):
            by_name = {row["contender"]: row for row in run if row["mode"] == mode}
            names = list(by_name)
            fp32 = [name for name in names if "snnzoo" in name and "bf16" not in name]
            bf16 = [name for name in names if "bf16" in name]
            peers = [name for name in names if "SpikingJelly" in name]
            authors = by_name.get(next((n for n in names if n.startswith("(a)")), ""), {})
            table.append([model, width, batch, mode,
                          f"{float(authors['images_per_s']):.1f} img/s, {_rss(authors)}"
                          if authors else "-", _best(by_name, fp32), _best(by_name, bf16),
                          _best(by_name, peers)])
    rows = [row for run in runs.values() for row in run]
    return "\n".join(["Runs (CPU model and flags, threads, versions: dates):", *_runs_lines(rows),
                      "", _table(["model", "width", "batch", "mode", "(a) authors, float32",
                                  "snnzoo fp32, fastest", "snnzoo bf16, fastest",
                                  "SpikingJelly 2.0"], table), ""])


def energy_fmnist() -> str:
    """snasnet_fmnist's energy per image and per layer, as its model card shows them
    (model_cards/snasnet_fmnist/energy.json, written by snnzoo.validate)."""
    from snnzoo.cards import energy_table
    from snnzoo._messages import format_count, format_energy

    path = CARDS / "snasnet_fmnist" / "energy.json"
    if not path.exists():
        return _pending("python -m snnzoo.validate snasnet_fmnist ... --json " + str(path.relative_to(ROOT)))
    measured = json.loads(path.read_text())
    energy = measured["energy"]
    summary = _table(["per image", "SNN", "ANN"], [
        ["SynOps", format_count(energy["synops"]), "0"],
        ["MACs", format_count(energy["macs"]), format_count(energy["ann_macs"])],
        ["energy", format_energy(energy["energy_pj"]), format_energy(energy["ann_energy_pj"])]])
    return "\n".join([
        f"snasnet_fmnist's published weights on the {measured['images']:,} images of the "
        f"Fashion-MNIST {measured['split']} split ({measured['precision']} on "
        f"`{measured['device']}`, top-1 {measured['top1']:.2f}%), at {energy['ac_pj']} pJ per "
        f"SynOp and {energy['mac_pj']} pJ per MAC; all LIF neurons fire at "
        f"{energy['firing_rate']:.4f}, and the SNN spends "
        f"{energy['energy_pj'] / energy['ann_energy_pj']:.3f} of the ANN's energy:", "",
        summary, "", *energy_table(energy), ""])


def energy_spikingjelly() -> str:
    """snnzoo's counts beside SpikingJelly 2.0's on its SNASNet port (benchmarks/energy.py)."""
    from snnzoo._messages import format_count, format_energy

    data = _read("energy_spikingjelly.json")
    if data is None:
        return _pending("benchmarks/energy.py")
    layers = data["layers"]
    rows = [[f"`{name}`", f"{row['synops']:,}", f"{row['last_feedback_synops']:,}",
             f"{row['spikingjelly_synops']:,}"] for name, row in layers.items()]
    rows.append(["**total**", *(f"{sum(row[key] for row in layers.values()):,}" for key in
                                ("synops", "last_feedback_synops", "spikingjelly_synops"))])
    ours, theirs = data["snnzoo"], data["spikingjelly"]
    counts, breakdown = theirs["counts"], theirs["breakdown_pj"]
    costs = theirs["costs"]
    energy = _table(["per image, float32", "snnzoo", "SpikingJelly's SimpleEnergyProfiler"], [
        ["SynOps", format_count(ours["synops"]), format_count(counts["synop"])],
        [f"accumulates at {costs['ac_pj']} pJ", format_count(ours["synops"]),
         format_count(counts["ac"])],
        [f"MACs at {costs['mac_pj']} pJ", format_count(ours["macs"]), format_count(counts["mac"])],
        ["energy of the accumulates", format_energy(ours["synops"] * ours["ac_pj"]),
         format_energy(breakdown["ac_pj"])],
        ["energy of the MACs", format_energy(ours["macs"] * ours["mac_pj"]),
         format_energy(breakdown["mac_pj"])],
        [f"memory: {format_count(counts['memory_access_bytes'])}B at "
         f"{costs['memory_pj_per_byte']} pJ per byte", "not counted",
         format_energy(breakdown["memory_pj"])],
        ["**energy**", format_energy(ours["energy_pj"]), format_energy(theirs["energy_pj"])]])
    operations = _table(["SpikingJelly counts, per image", "operation", "count"], [
        *[["accumulates", f"`{op}`", format_count(value)]
          for op, value in theirs["accumulates_by_operation"].items()],
        *[["MACs", f"`{op}`", format_count(value)]
          for op, value in theirs["macs_by_operation"].items()]])
    return "\n".join([
        f"{data['model']} with drawn weights (`excite`), T = {data['timesteps']}, "
        f"{data['images']} images of the Fashion-MNIST sample in RGB at 32 x 32; "
        f"{data['device']}, {data['versions']}, SpikingJelly {data['spikingjelly_version']}, "
        f"{data['date']}.", "",
        "SynOps of all images, float64:", "",
        _table(["layer", "snnzoo", "last step's feedback", "SpikingJelly SynOpCounter"], rows),
        "", "Energy per image, float32:", "", energy, "", operations, ""])


GENERATORS = {function.__name__: function
              for function in (score_change, demo_top, search_choices, score_vs_accuracy,
                               check_finite, scorer_cpu, scorer_gpu, lif_cpu, lif_gpu,
                               models_cpu, models_gpu, search_cpu, search_gpu, speed_headline,
                               models_table, models_table_docs, precision_fidelity,
                               precision_speed, energy_fmnist, energy_spikingjelly)}


def render(text: str) -> str:
    def replace(match):
        return match[1] + GENERATORS[match["name"]]().rstrip("\n") + "\n" + match[4]
    return BLOCK.sub(replace, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for page in [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]:
        text = page.read_text()
        rendered = render(text)
        if rendered != text:
            stale.append(page)
            if not args.check:
                page.write_text(rendered)
    for source, target in PICTURES.items():
        if (RESULTS / source).exists():
            destination = DOCS / "images" / target
            if not destination.exists() or destination.read_bytes() != (RESULTS / source).read_bytes():
                stale.append(destination)
                if not args.check:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(RESULTS / source, destination)
    if args.check and stale:
        print("not what benchmarks/results give: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
              + "; run python scripts/docs_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
