"""The wheel carries kernels/ as snnzoo.kernels and imports on its own."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_built_wheel_imports_snnzoo_kernels(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("snnzoo-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "snnzoo/kernels/lif/__init__.py" in names and "snnzoo/layers/lif.py" in names
    modules = {f"snnzoo/{path.relative_to(ROOT).as_posix()}"
               for path in (ROOT / "kernels").rglob("*.py")}
    assert modules <= set(names), f"kernel modules left out: {sorted(modules - set(names))}"
    assert not any(name.startswith("kernels/") for name in names), "a top-level 'kernels' package"
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import snnzoo.kernels, snnzoo.layers, torch; "
            "print(snnzoo.kernels.__file__); "
            "print(int(snnzoo.layers.LIF(backend='auto')(torch.full((2, 3), 2.0)).sum()))")
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                            capture_output=True, text=True)
    kernels_file, spike_count = result.stdout.split()
    assert Path(kernels_file).is_relative_to(unpacked)
    assert spike_count == "6"  # h = 2 * 3/4 = 1.5 >= 1 at both steps
