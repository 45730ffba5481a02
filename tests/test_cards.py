"""Model cards: every registered model has a current, truthful model_cards/<name>/ folder; and
snnzoo.viz writes the pictures."""

import dataclasses
import functools
import importlib.util
import json
import math
import re
import types
from pathlib import Path

import pytest
import timm
import torch
import yaml
from PIL import Image
from timm.layers import to_2tuple
from timm.models import PretrainedCfg

import snnzoo
from snnzoo import hub
from snnzoo.models.genotype import parse_genotype
from snnzoo.viz import draw_cell, firing_rate_chart, score_histogram, training_curves

ROOT = Path(__file__).resolve().parent.parent
CARDS = ROOT / "model_cards"
GENERATOR = ROOT / "scripts" / "make_model_cards.py"
MODELS = snnzoo.list_models()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MEASURED_BEGIN = "<!-- measured:begin -->"
OUR_CFG_KEYS = {"timesteps", "genotype", "cell", hub.WEIGHTS_SHA256_KEY}
REGENERATE = "regenerate with `python scripts/make_model_cards.py`"


@functools.cache
def registered(name):
    """A freshly built model on the meta device: its cfg, arguments and parameter shapes,
    without the time to allocate and initialise 75 M weights."""
    with torch.device("meta"):
        return snnzoo.create_model(name)


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("make_model_cards", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_card(name):
    path = CARDS / name / hub.CARD_FILENAME
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, f"{path} has no YAML front matter between '---' lines at the top"
    return yaml.safe_load(match.group(1)), text[match.end():]


def stated(body, label, name):
    match = re.search(rf"\*\*{label}:\*\* `?([^`\n(]+?)`?(?: \(|\n)", body)
    assert match, f"the card of {name} does not state its {label.lower()} ('**{label}:** ...')"
    return match.group(1).strip()


def read_config(name):
    path = CARDS / name / hub.CONFIG_FILENAME
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    return json.loads(path.read_text(encoding="utf-8"))


# The folders


def test_every_registered_model_has_a_folder():
    assert MODELS, "snnzoo.list_models() is empty"
    missing = [name for name in MODELS if not (CARDS / name).is_dir()]
    assert not missing, f"no model_cards/<name>/ for {missing}: {REGENERATE}"


@pytest.mark.parametrize("name", MODELS)
def test_folder_has_card_and_cell_picture(name):
    for filename in (hub.CARD_FILENAME, hub.CONFIG_FILENAME, "cell.png"):
        assert (CARDS / name / filename).is_file(), f"model_cards/{name}/{filename} is missing"
    picture = (CARDS / name / "cell.png").read_bytes()
    assert picture.startswith(PNG_SIGNATURE), f"model_cards/{name}/cell.png is not a PNG"
    _, body = read_card(name)
    assert "![cell](cell.png)" in body, f"the card of {name} does not show cell.png"


@pytest.mark.parametrize("name", MODELS)
def test_front_matter(name):
    front_matter, _ = read_card(name)
    cfg = registered(name).pretrained_cfg
    assert front_matter.get("library_name") == "timm"
    assert front_matter.get("license") == cfg["license"], (
        f"card license {front_matter.get('license')!r} != cfg license {cfg['license']!r}")
    tags = front_matter.get("tags") or []
    for tag in ("snnzoo", "spiking-neural-network", "image-classification",
                "neural-architecture-search"):
        assert tag in tags, f"the card of {name} lacks the tag {tag!r}; it has {tags}"
    datasets = front_matter.get("datasets") or []
    assert datasets and all("/" in dataset for dataset in datasets), (
        f"the card of {name} should name its data set by Hub id (owner/name), not {datasets}")


@pytest.mark.parametrize("name", MODELS)
def test_card_states_the_registered_architecture(name):
    _, body = read_card(name)
    model = registered(name)
    cfg = model.pretrained_cfg
    expected = dict(Genotype=str(parse_genotype(cfg["genotype"], cfg["cell"])),
                    **{"Cell type": cfg["cell"], "Timesteps": str(cfg["timesteps"]),
                       "Parameters": f"{sum(p.numel() for p in model.parameters()):,}"})
    for label, value in expected.items():
        assert stated(body, label, name) == value, (
            f"the card of {name} says {label.lower()} {stated(body, label, name)!r}, the "
            f"registered model has {value!r}: {REGENERATE}")
    assert model.genotype == expected["Genotype"] and model.timesteps == cfg["timesteps"]


@pytest.mark.parametrize("name", MODELS)
def test_config_matches_the_registered_model(name):
    config = read_config(name)
    model = registered(name)
    cfg = model.pretrained_cfg
    assert config["architecture"] == name
    assert config["num_classes"] == cfg["num_classes"] == model.num_classes
    assert config["num_features"] == model.num_features
    model_args = config["model_args"]
    for key, value in model.model_args.items():
        written = model_args.get(key)
        if key == "img_size":
            written, value = to_2tuple(written), to_2tuple(value)
        assert written == value, f"config.json of {name}: model_args[{key!r}] = {written!r}, " \
                                 f"the model has {value!r}"
    with torch.device("meta"):
        rebuilt = timm.create_model(name, **model_args)
    assert rebuilt.model_args == model.model_args, "config.json's model_args build another model"
    timm_keys = {field.name for field in dataclasses.fields(PretrainedCfg)}
    unknown = set(config["pretrained_cfg"]) - timm_keys - OUR_CFG_KEYS
    assert not unknown, f"config.json of {name} has pretrained_cfg keys timm does not know: " \
                        f"{sorted(unknown)}"
    for key in ("timesteps", "genotype", "cell", "license", "input_size", "mean", "std"):
        written, value = config["pretrained_cfg"][key], cfg[key]
        if isinstance(value, tuple):
            value = list(value)
        assert written == value, f"config.json of {name}: pretrained_cfg[{key!r}] = " \
                                 f"{written!r}, registered {value!r}"
    weights = CARDS / name / hub.WEIGHTS_FILENAME
    expected_sha256 = hub.file_sha256(weights) if weights.is_file() else cfg.get(
        hub.WEIGHTS_SHA256_KEY)
    assert config["pretrained_cfg"][hub.WEIGHTS_SHA256_KEY] == expected_sha256


@pytest.mark.parametrize("name", MODELS)
def test_metrics_only_with_a_measured_section(name):
    front_matter, body = read_card(name)
    measured = MEASURED_BEGIN in body
    for key in ("metrics", "model-index"):
        assert (key in front_matter) == measured, (
            f"the card of {name} has {key!r} in its front matter "
            f"{'without' if not measured else 'but not with'} a measured section: only numbers "
            f"measured here belong in the metadata")


@pytest.mark.parametrize("name", MODELS)
def test_card_without_published_weights_says_so(name):
    _, body = read_card(name)
    published = registered(name).pretrained_cfg.get(hub.WEIGHTS_SHA256_KEY)
    assert ("not yet published" in body) == (not published), (
        f"cfg hf_hub_sha256 is {published!r} but the card "
        f"{'does not say' if not published else 'still says'} the weights are not yet published")
    assert f'create_model("{name}", pretrained=True)' in body


@pytest.mark.parametrize("name", MODELS)
def test_card_is_up_to_date(name, generator):
    problems = generator.check_model_folder(name, CARDS, device="meta")
    assert not problems, f"{'; '.join(problems)}: {REGENERATE}"


# The generator on a scratch folder


RESULTS = {"top1": 90.5, "top5": 99.61, "images": 10000, "spikes_per_image": 4321.0,
           "firing_rates": {"cell1.edges.0_1.lif": 0.0812},
           "command": "python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist",
           "hardware": "2-core CPU", "training_time": "5 h"}


def test_generator_writes_measured_results_and_keeps_them(tmp_path, generator):
    name = "snasnet_fmnist"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(RESULTS))
    facts = generator.model_facts(name)
    card = generator.render_card(facts, folder)
    front_matter, body = generator.split_card(card)
    assert MEASURED_BEGIN in body and "90.50%" in body and "99.61%" in body
    assert RESULTS["command"] in body and "2-core CPU" in body
    metrics = front_matter["model-index"][0]["results"][0]["metrics"]
    assert [metric["value"] for metric in metrics] == [90.5, 99.61]
    assert front_matter["model-index"][0]["results"][0]["dataset"]["type"] == \
        "zalando-datasets/fashion_mnist"
    sha256 = facts["cfg"].get(hub.WEIGHTS_SHA256_KEY)
    assert "being trained" not in body
    assert (sha256 in body) if sha256 else ("not yet published" in body)

    (folder / hub.CARD_FILENAME).write_text(card)
    (folder / "results.json").unlink()
    kept = generator.render_card(facts, folder)
    assert generator.measured_block(kept) == generator.measured_block(card)
    assert generator.split_card(kept)[0]["model-index"] == front_matter["model-index"]


def test_measured_section_of_a_training_run_says_once_what_was_chosen(tmp_path, generator):
    from snnzoo.train import training_results
    args = types.SimpleNamespace(device="cpu", command=RESULTS["command"])
    final = dict(top1=90.5, top5=99.61, images=10000, spikes_per_image=4321.0, firing_rates={})
    folder = tmp_path / "snasnet_fmnist"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(training_results(args, dict(rows=[]), final)))
    body = generator.render_card(generator.model_facts("snasnet_fmnist"), folder)
    sentence = next(line for line in body.splitlines() if line.startswith("Measured by us"))
    assert sentence.count("chosen") == 1, sentence


def test_usage_snippet_of_the_card_runs(tmp_path, monkeypatch):
    """The timm snippet of the card, as a user copies it, with the folder's own weights."""
    name = "snasnet_fmnist"
    _, body = read_card(name)
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", body, re.DOTALL)
                   if "timm.create_model" in block)
    weights = CARDS / name / hub.WEIGHTS_FILENAME
    snippet = snippet.replace("pretrained=True", f"pretrained=True, pretrained_cfg_overlay="
                                                 f"dict(file={str(weights)!r})")
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (40, 30), (200, 120, 40)).save("image.png")  # any picture a user has
    namespace = {}
    exec(compile(snippet, "card snippet", "exec"), namespace)
    assert namespace["logits"].shape == (1, registered(name).num_classes)


def test_generator_never_touches_the_weights(tmp_path, generator):
    name = "snasnet_fmnist"
    folder = tmp_path / name
    folder.mkdir()
    weights = folder / hub.WEIGHTS_FILENAME
    weights.write_bytes(b"not really weights")
    generator.write_model_folder(name, tmp_path)
    assert weights.read_bytes() == b"not really weights"
    config = json.loads((folder / hub.CONFIG_FILENAME).read_text())
    assert config["pretrained_cfg"][hub.WEIGHTS_SHA256_KEY] == hub.file_sha256(weights)
    assert sorted(path.name for path in folder.iterdir()) == sorted(
        [hub.CARD_FILENAME, hub.CONFIG_FILENAME, hub.WEIGHTS_FILENAME, "cell.png"])


@pytest.mark.parametrize("filename, match", [
    ("results.json", "lacks command"),
    ("energy.json", "lacks energy, firing_rates, dataset, split, images: measure again")])
def test_generator_rejects_incomplete_measurements(tmp_path, generator, filename, match):
    folder = tmp_path / "snasnet_fmnist"
    folder.mkdir()
    (folder / filename).write_text(json.dumps({"top1": 90.0}))
    with pytest.raises(generator.CardError, match=match):
        generator.render_card(generator.model_facts("snasnet_fmnist"), folder)


def test_generator_writes_the_energy_section_and_chart(tmp_path, generator):
    name = "snasnet_fmnist"
    folder = tmp_path / name
    folder.mkdir()
    measured = json.loads((CARDS / name / "energy.json").read_text())
    (folder / "energy.json").write_text(json.dumps(measured))
    generator.write_model_folder(name, tmp_path)
    assert (folder / "firing_rates.png").read_bytes().startswith(PNG_SIGNATURE)
    body = (folder / hub.CARD_FILENAME).read_text()
    energy = body[body.index("## Energy"):]
    assert "![firing rate of each LIF layer](firing_rates.png)" in energy
    assert f"({measured['images']:,} images)" in energy
    assert all(f"| `{layer}` |" in energy for layer in measured["energy"]["layers"])
    assert (f"python -m snnzoo.validate {name} --checkpoint model_cards/{name} --dataset "
            f"fashion-mnist --json model_cards/{name}/energy.json") in energy


# snnzoo.viz


def test_draw_cell_writes_distinct_pngs(tmp_path):
    first = draw_cell(("0302 0030 3003 0000", "backward"), tmp_path / "a.png", title="a")
    second = draw_cell(parse_genotype("0303 0030 2002 0200"), tmp_path / "b.png")
    for path in (first, second):
        assert path.read_bytes().startswith(PNG_SIGNATURE), f"{path.name} is not a PNG"
    assert first.read_bytes() != second.read_bytes(), "two genotypes gave the same picture"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a.png", "b.png"], \
        "a temporary file was left behind"


def test_draw_cell_draws_forward_cells_and_refuses_other_input(tmp_path):
    path = draw_cell(("0123 0012 0003 0000", "forward"), tmp_path / "forward.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(TypeError, match="Genotype"):
        draw_cell(1234, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="below the diagonal"):
        draw_cell(("0302 0030 3003 0000", "forward"), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_score_histogram_of_scores_a_few_ulps_apart(tmp_path):
    scores = [1697.2893, math.nextafter(1697.2893, 2e3), -math.inf]  # numpy: too many bins
    path = score_histogram(scores, tmp_path / "close.png", best=scores[1])
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_picture_labels_count_in_words():
    from snnzoo.viz import _count
    assert [_count(n, "candidate") for n in (0, 1, 2)] == ["0 candidates", "1 candidate",
                                                          "2 candidates"]


def test_score_histogram_writes_pngs(tmp_path):
    scores = [float(index % 17) for index in range(200)] + [-math.inf] * 7
    with_best = score_histogram(scores, tmp_path / "scores.png", best=16.0, title="search")
    rejected = score_histogram([-math.inf, -math.inf], tmp_path / "rejected.png")
    for path in (with_best, rejected):
        assert path.read_bytes().startswith(PNG_SIGNATURE), f"{path.name} is not a PNG"
    assert with_best.read_bytes() != rejected.read_bytes()


def test_training_curves_of_one_epoch_mark_it_and_leave_the_backend(tmp_path, monkeypatch):
    import matplotlib
    from snnzoo import viz
    figures = []
    saved = viz.save_figure
    monkeypatch.setattr(viz, "save_figure",
                        lambda figure, path: (figures.append(figure), saved(figure, path))[1])
    backend = matplotlib.get_backend()
    row = dict(epoch=1, lr=0.1, train_loss=2.1, train_top1=31.5, val_loss="", val_top1="",
               test_loss=1.9, test_top1=35.0, test_top5=80.0, seconds=3.0)
    path = training_curves([row], tmp_path / "curves.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert matplotlib.get_backend() == backend, "drawing the curves changed matplotlib's backend"
    loss_axis, accuracy_axis = figures[0].axes
    for axis in (loss_axis, accuracy_axis):
        lines = {line.get_label(): line for line in axis.get_lines()}
        assert sorted(lines) == ["test", "train"], f"{axis.get_title()}: {sorted(lines)}"
        for label, line in lines.items():
            assert line.get_marker() not in (None, "None", "", " "), \
                f"{axis.get_title()}: one epoch of {label} draws nothing without a marker"
        ticks = [tick for tick in axis.get_xticks() if axis.get_xlim()[0] <= tick <= axis.get_xlim()[1]]
        assert 1.0 in ticks and all(tick == round(tick) for tick in ticks), \
            f"{axis.get_title()}: epoch ticks {ticks}"
    with pytest.raises(ValueError, match="at least one epoch"):
        training_curves([], tmp_path / "empty.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_firing_rate_chart_writes_a_png_and_refuses_what_is_not_a_rate(tmp_path):
    path = firing_rate_chart({"cell1.edges.0_1.lif": 0.07, "pre_lif": 0.35}, tmp_path / "f.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    for rates in ({}, {"pre_lif": 1.5}):
        with pytest.raises(ValueError, match="firing rates in \\[0, 1\\]"):
            firing_rate_chart(rates, tmp_path / "bad.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]
