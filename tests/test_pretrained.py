"""SNASNet weights: the authors' checkpoints converted, and pretrained loading through a local
Hub-compatible server (tests/hub_server.py)."""


import pytest
import timm
import torch

import snnzoo
from conftest import assert_close
from snnzoo import hub
from snnzoo.convert import main as convert_main
from snnzoo.models._pretrained import WeightsNotPublishedError
from snnzoo.models.reference import AuthorsSNASNet, excite
from snnzoo.models.snasnet import MODEL_ARGS
from test_hub import hub_env, server  # noqa: F401  (fixtures)

SMALL = dict(width=4, classifier_width=16)


def _authors_checkpoint(path, model_name, **overrides):
    """A checkpoint in the authors' layout ({'state_dict': ...}) and the network that made it."""
    args = {**MODEL_ARGS[model_name], **overrides}
    torch.manual_seed(0)
    reference = excite(AuthorsSNASNet(**args))
    torch.save({"state_dict": reference.state_dict()}, path)
    return reference.eval()


@pytest.mark.parametrize("model_name, overrides", [
    ("snasnet_fmnist", {}),
    ("snasnet_fmnist", dict(genotype="0314 0023 0004 0000", cell="forward")),
    ("snasnet_cifar10", {}),
])
def test_converted_checkpoint_gives_the_authors_logits(tmp_path, model_name, overrides):
    reference = _authors_checkpoint(tmp_path / "save.pth.tar", model_name, **overrides)
    flags = [f"--{key}={value}" for key, value in overrides.items()]
    assert convert_main([str(tmp_path / "save.pth.tar"), "--model", model_name, *flags,
                         "--out", str(tmp_path / "converted")]) == 0
    assert sorted(p.name for p in (tmp_path / "converted").iterdir()) == [
        "README.md", "config.json", "model.safetensors"]
    assert hub.validate_model_folder(tmp_path / "converted") == []
    model = snnzoo.create_model(model_name, pretrained=True, **overrides, pretrained_cfg_overlay=dict(
        file=str(tmp_path / "converted" / "model.safetensors"))).eval()
    images = torch.randn(2, *model.pretrained_cfg["input_size"],
                         generator=torch.Generator().manual_seed(1))
    expected = reference(images)
    assert expected.abs().max() > 0.01, "the checkpoint's network should reach its output"
    assert_close(model(images), expected, 1e-6, 1e-5, "logits of the converted checkpoint")


def test_convert_refuses_missing_and_unexpected_keys(tmp_path, capsys):
    _authors_checkpoint(tmp_path / "save.pth.tar", "snasnet_fmnist")
    # The checkpoint's cell is 0302 0030 3003 0000; claiming another cell leaves keys over.
    status = convert_main([str(tmp_path / "save.pth.tar"), "--model", "snasnet_fmnist",
                           "--genotype", "0300 0030 3003 0000", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 1 and not (tmp_path / "out").exists()
    assert "unexpected keys ['cell1.cell_architecture.3.1.weight'" in error
    assert "missing keys none" in error
    torch.save({"state_dict": {"stem.0.weight": torch.zeros(16, 1, 3, 3)}}, tmp_path / "bad.pth")
    assert convert_main([str(tmp_path / "bad.pth"), "--model", "snasnet_fmnist", "--out",
                         str(tmp_path / "out")]) == 1
    assert "missing keys ['cell1.edges.0_1.bn.bias'" in capsys.readouterr().err


def test_unpublished_weights_say_how_to_get_them():
    with pytest.raises(WeightsNotPublishedError, match=r"python -m snnzoo.convert .*--model "
                                                        r"snasnet_cifar100"):
        snnzoo.create_model("snasnet_cifar100", pretrained=True)


def _publish(server, repo_id, **model_kwargs):  # noqa: F811
    torch.manual_seed(0)
    model = snnzoo.create_model("snasnet_fmnist", **SMALL, **model_kwargs).eval()
    folder = hub.save_pretrained(model, server.root / "staging" / repo_id.replace("/", "_"))
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    server.commit_files(repo_id, files)
    return model, hub.file_sha256(folder / "model.safetensors")


def test_hf_hub_name_builds_and_loads_from_the_repo(server):  # noqa: F811
    original, _ = _publish(server, "someone/fmnist-tiny", timesteps=3)
    model = snnzoo.create_model("hf-hub:someone/fmnist-tiny", pretrained=True).eval()
    assert model.timesteps == 3 and model.genotype == original.genotype
    images = torch.randn(2, 1, 28, 28)
    assert_close(model(images), original(images), 0, 0, "logits after the Hub round trip")


def test_registered_name_downloads_its_cfg_repo(server, monkeypatch):  # noqa: F811
    original, sha256 = _publish(server, "snnzoo/snasnet_fmnist")
    cfg = timm.models._registry._model_pretrained_cfgs["snasnet_fmnist"]  # the registered one
    monkeypatch.setattr(cfg, "hf_hub_sha256", sha256)
    model = timm.create_model("snasnet_fmnist", pretrained=True, **SMALL).eval()
    images = torch.randn(2, 1, 28, 28)
    assert_close(model(images), original(images), 0, 0, "logits")
    with pytest.warns(UserWarning, match="fc\\) is newly initialised"):
        adapted = snnzoo.create_model("snasnet_fmnist", pretrained=True, num_classes=3, **SMALL)
    assert adapted(images).shape == (2, 3)
    assert_close(adapted.stem[0].weight, original.stem[0].weight, 0, 0, "kept stem")
    with pytest.warns(UserWarning, match="adapts the first conv"):
        adapted = snnzoo.create_model("snasnet_fmnist", pretrained=True, in_chans=3, **SMALL)
    assert adapted(torch.randn(1, 3, 28, 28)).shape == (1, 10)
    monkeypatch.setattr(cfg, "hf_hub_sha256", "0" * 64)
    with pytest.raises(hub.WeightsIntegrityError, match="snnzoo/snasnet_fmnist"):
        snnzoo.create_model("snasnet_fmnist", pretrained=True, **SMALL)
