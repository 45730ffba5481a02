"""snnzoo.models' imports flow one way (STYLE.md, Models), and importing reads no variant."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "snnzoo"

# snnzoo.models' modules, each importing only modules before it in this order.
MODELS_FLOW = ["genotype", "cells", "reference", "_pretrained", "_weights", "_builder", "snasnet",
               "variants", "_factory", "__init__"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE_ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path):
    """(snnzoo module imported, the import statement, whether it is inside a function) for
    every import in path; `from package import module` names the module."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_functions = {id(node) for function in ast.walk(tree)
                    if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for node in ast.walk(function)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target == "snnzoo" or target.startswith("snnzoo."):
                yield target, node, id(node) in in_functions


def _import_graph() -> dict[str, set[str]]:
    return {_module_name(path): {target for target, _, _ in _imports(path)} - {_module_name(path)}
            for path in PACKAGE_ROOT.rglob("*.py")}


def _cycle_through(graph: dict[str, set[str]], start: str):
    """A list of modules start -> ... -> start, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in graph.get(node, ()):
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_models_take_part_in_no_import_cycle():
    graph = _import_graph()
    for module in sorted(graph):
        if module.startswith("snnzoo.models"):
            cycle = _cycle_through(graph, module)
            assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_models_imports_flow_one_way():
    for path in sorted((PACKAGE_ROOT / "models").glob("*.py")):
        rank = MODELS_FLOW.index(path.stem)
        for target, node, _ in _imports(path):
            if target.startswith("snnzoo.models"):
                stem = target.rpartition(".")[2] if target != "snnzoo.models" else "__init__"
                assert MODELS_FLOW.index(stem) < rank, (
                    f"snnzoo/models/{path.name}:{node.lineno} imports {target}, which comes "
                    f"after it in {MODELS_FLOW}")


def test_models_import_nothing_of_snnzoo_inside_a_function():
    for path in sorted((PACKAGE_ROOT / "models").glob("*.py")):
        late = [f"{path.name}:{node.lineno} imports {target}"
                for target, node, in_function in _imports(path) if in_function]
        assert late == [], "an import inside a function hides an import cycle: " + "; ".join(late)


def test_models_functions_stay_short():
    for path in sorted((PACKAGE_ROOT / "models").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                assert lines <= 60, f"{path.name}:{node.lineno} {node.name} has {lines} lines"


# Run in a fresh interpreter: it imports snnzoo with a variants directory holding one variant,
# records every file opened or directory listed in it, then registers a variant by hand.
_PROBE = """
import json, os, sys
seen = []
root = os.environ["SNNZOO_VARIANTS_DIR"]
def hook(event, args):
    if event in ("open", "os.scandir", "os.listdir") and args and str(args[0]).startswith(root):
        seen.append(f"{event} {args[0]}")
sys.addaudithook(hook)
import snnzoo, timm
from snnzoo.models.snasnet import MODEL_ARGS
from snnzoo.models.variants import register_variant
report = dict(read_at_import=list(seen), registered_at_import=timm.is_model("snasnet_on_disk"))
register_variant("snasnet_by_hand", dict(MODEL_ARGS["snasnet_fmnist"], width=2,
                 classifier_width=4), timm.models.get_pretrained_cfg("snasnet_fmnist").to_dict())
report["module"] = timm.models.model_entrypoint("snasnet_by_hand").__module__
report["in_snnzoo_list"] = "snasnet_by_hand" in snnzoo.list_models()
report["on_disk_in_snnzoo_list"] = "snasnet_on_disk" in snnzoo.list_models()
namespace = {}
exec("from snnzoo.models.snasnet import *", namespace)
exec("from snnzoo.models.variants import *", namespace)
report["star_import"] = sorted(name for name in namespace if name.startswith("snasnet_"))
report["built"] = type(snnzoo.create_model("snasnet_by_hand")).__name__
print(json.dumps(report))
"""


def test_import_reads_no_variant_and_a_variant_lives_in_the_variants_module(tmp_path):
    folder = tmp_path / "snasnet_on_disk"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(dict(
        architecture="snasnet_on_disk", num_classes=10,
        pretrained_cfg=dict(input_size=[1, 28, 28], num_classes=10),
        model_args=dict(genotype="0302 0030 3003 0000", width=2, classifier_width=4,
                        in_chans=1, img_size=28))))
    env = {**os.environ, "SNNZOO_VARIANTS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["read_at_import"] == [], "import snnzoo read the variants directory"
    assert report["registered_at_import"] is False
    assert report["module"] == "snnzoo.models.variants"
    assert report["in_snnzoo_list"] and report["on_disk_in_snnzoo_list"]
    assert report["star_import"] == ["snasnet_by_hand", "snasnet_cifar10", "snasnet_cifar100",
                                     "snasnet_fmnist", "snasnet_on_disk",
                                     "snasnet_tinyimagenet"]
    assert report["built"] == "SNASNet"

