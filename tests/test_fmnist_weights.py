"""The published snasnet_fmnist weights (model_cards/snasnet_fmnist) classify the embedded
Fashion-MNIST sample at the accuracy its card reports, loaded from the file and through a
local Hub-compatible server."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

import snnzoo
from snnzoo import hub
from snnzoo.data import load_dataset
from snnzoo.evaluate import evaluate
from test_hub import hub_env, server  # noqa: F401  (fixtures)

FOLDER = Path(__file__).resolve().parents[1] / "model_cards" / "snasnet_fmnist"
pytestmark = pytest.mark.skipif(not (FOLDER / "model.safetensors").exists(),
                                reason="snasnet_fmnist has no committed weights")


def _sample_top1(model) -> float:
    sample = ConcatDataset([load_dataset("fashion-mnist-sample", split) for split in ("train", "test")])
    assert len(sample) == 2000
    return evaluate(model, DataLoader(sample, 500), torch.device("cpu"))["top1"]


def _reported():
    results = json.loads((FOLDER / "results.json").read_text())
    card = (FOLDER / "README.md").read_text()
    assert f"top-1 {results['sample_top1']:.2f}%" in card
    assert f"{results['top1']:.2f}%" in card
    return results


def test_card_cfg_and_file_agree():
    cfg = snnzoo.create_model("snasnet_fmnist").pretrained_cfg
    assert cfg["hf_hub_sha256"] == hub.file_sha256(FOLDER / "model.safetensors")
    assert cfg["hf_hub_sha256"] in (FOLDER / "README.md").read_text()
    assert hub.validate_model_folder(FOLDER) == []
    assert "snasnet_fmnist" in snnzoo.list_pretrained()


def _committed_tensors_loaded(model):
    committed = hub.load_state_dict(FOLDER / "model.safetensors")
    state = model.state_dict()
    assert sorted(state) == sorted(committed)
    for key, tensor in committed.items():
        assert torch.equal(state[key], tensor), f"{key} differs from the committed file"


def test_committed_weights_from_the_file():
    """Loaded from the file, the model holds exactly the committed tensors (whose accuracy the
    test below measures on the way a user gets them, through the Hub)."""
    model = snnzoo.create_model("snasnet_fmnist", pretrained=True, pretrained_cfg_overlay=dict(
        file=str(FOLDER / "model.safetensors")))
    _committed_tensors_loaded(model)


@pytest.mark.slow
def test_committed_weights_through_the_hub(server):  # noqa: F811
    server.commit_files("snnzoo/snasnet_fmnist",
                        {path.name: path.read_bytes() for path in FOLDER.iterdir() if path.is_file()})
    model = snnzoo.create_model("snasnet_fmnist", pretrained=True)
    _committed_tensors_loaded(model)
    assert _sample_top1(model) == pytest.approx(_reported()["sample_top1"], abs=0.005)
