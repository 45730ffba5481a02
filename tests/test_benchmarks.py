"""Every benchmark script runs end to end with --smoke: tiny sizes, one timed run, nothing recorded.

The README's tables come from these scripts, and a GPU session runs them all on a budget of
minutes (scripts/gpu_check.sh), so a script that no longer runs must fail here, not there.
Each run also performs the script's own checks (equal scores, equal logits, equal spikes),
which make it exit non-zero. Nothing here looks at the timings. The scripts run in child
processes, two at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# spike_conv's smoke run is in tests/test_spike_conv.py, beside the kernel it exercises;
# precision's in tests/test_precision_fidelity.py, which also reads the figures it records;
# energy's in tests/test_energy.py, in process, beside the counts it compares
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py")
                 if path.stem not in ("common", "spike_conv", "precision", "energy"))


def _results_snapshot() -> dict:
    return {path.name: (path.stat().st_size, path.stat().st_mtime_ns)
            for path in (BENCHMARKS / "results").rglob("*") if path.is_file()}


def _run(script: str) -> subprocess.CompletedProcess:
    # snnzoo's CPU paths run eagerly here: what compiling them gives is tested in the suite
    # itself, and each script would compile its own graphs again in a process of its own.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "SNNZOO_COMPILE_CPU": "0"}
    return subprocess.run([sys.executable, str(BENCHMARKS / f"{script}.py"), "--smoke"],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def smoke_runs(request):
    """script -> future of its --smoke run; every selected script starts at the first test."""
    selected = sorted({item.callspec.params["script"] for item in request.session.items
                       if getattr(item, "originalname", None) == "test_benchmark_smoke"
                       and item.path == request.path})  # other files have smokes of their own
    before = _results_snapshot()
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {script: pool.submit(_run, script) for script in selected}
    assert _results_snapshot() == before, "a --smoke run wrote into benchmarks/results"


def test_the_scripts_are_found():  # else the parametrised test below would pass vacuously
    assert {"lif", "models", "scorer", "search", "score_vs_accuracy"} <= set(SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, smoke_runs):
    done = smoke_runs[script].result()
    assert done.returncode == 0, (f"benchmarks/{script}.py --smoke exited {done.returncode}:\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert done.stdout.strip(), f"{script} printed no results:\n{done.stderr[-3000:]}"
    assert "recorded in" not in done.stdout, f"{script} recorded a --smoke run"
