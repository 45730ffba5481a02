"""benchmarks/precision.py: its --smoke run records every part's figures in the file it is
given (never in benchmarks/results), and the figures it derives are what its recorded scores
give."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "precision.py"
sys.path.insert(0, str(BENCHMARKS))
import precision as precision_script  # noqa: E402


@pytest.mark.slow
def test_smoke_run_records_every_part(tmp_path):
    results = tmp_path / "precision.json"
    # snnzoo's CPU paths run eagerly, as in tests/test_benchmarks.py
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SNNZOO_COMPILE_CPU": "0"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--results", str(results)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures = json.loads(results.read_text())
    assert list(figures) == ["evaluate", "search", "train"]
    for part, recorded in figures.items():
        assert recorded["smoke"] is True and recorded["device"] and recorded["versions"], part
    evaluate = figures["evaluate"]
    assert evaluate["fp32"]["images"] == evaluate["bf16"]["images"] == 400
    assert 0 <= evaluate["changed_predictions"] <= 400
    search = figures["search"]
    assert [(c["seed"], c["index"]) for c in search["candidates"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(len(c["repeats"][p]) == 2 for c in search["candidates"] for p in ("fp32", "bf16"))
    assert search["same_winner"] == sum(s["same_winner"] for s in search["searches"])
    train = figures["train"]
    assert [run["seed"] for run in train["runs"]["bf16"]] == [0]
    assert train["top1_difference_points"] == [train["top1"]["bf16"][0] - train["top1"]["fp32"][0]]
    assert "| (c) short training" in done.stdout


def test_score_agreement_is_what_the_scores_give():
    candidates = [dict(fp32=float(f), bf16=float(b)) for f, b in
                  ((1, 1.1), (2, 1.9), (3, 3.3), (4, 3.2), (5, -math.inf))]
    found = precision_script.score_agreement(candidates)
    # 4 finite pairs: 5 of 6 orderings agree, (3, 3.3) and (4, 3.2) swap: tau = (5 - 1) / 6
    assert found["tau_candidates"] == 4 and found["kendall_tau_b"] == pytest.approx(4 / 6)
    assert found["not_finite"] == {"fp32": 0, "bf16": 1}
    assert found["relative_difference"]["largest"] == pytest.approx(0.2)  # |3.2 - 4| / 4
    assert found["tau_target_met"] is False  # fewer than 100 candidates


def test_met_targets_are_recorded_as_json():
    candidates = [dict(fp32=float(k), bf16=k + 0.5)
                  for k in range(precision_script.TAU_MINIMUM_CANDIDATES)]
    found = precision_script.score_agreement(candidates)
    assert found["tau_target_met"] is True and found["kendall_tau_b"] == 1.0
    json.dumps(found, allow_nan=False)  # plain bools and floats, not numpy's


def test_parts_are_merged_not_replaced(tmp_path):
    path = tmp_path / "precision.json"
    precision_script.record_part(path, "train", {"top1": 1})
    precision_script.record_part(path, "evaluate", {"top1": 2})
    precision_script.record_part(path, "train", {"top1": 3})
    assert json.loads(path.read_text()) == {"evaluate": {"top1": 2}, "train": {"top1": 3}}
    assert [entry.name for entry in tmp_path.iterdir()] == ["precision.json"]
