"""SNASNet weights: the authors' checkpoints converted, and pretrained loading through a local
Hub-compatible server (tests/hub_server.py)."""

import json
import os
import subprocess
import sys
import time
import warnings

import pytest
import safetensors.torch
import timm
import torch

import snnzoo
from conftest import assert_close
from snnzoo import hub
from snnzoo.convert import main as convert_main
from snnzoo.models._pretrained import WeightsMismatchError, WeightsNotPublishedError
from snnzoo.models.reference import AuthorsSNASNet, excite
from snnzoo.models.snasnet import MODEL_ARGS
from test_hub import closed_port_url, hub_env, server  # noqa: F401  (fixtures)

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
def test_converted_checkpoint_gives_the_authors_logits(tmp_path, capsys, model_name, overrides):
    reference = _authors_checkpoint(tmp_path / "save.pth.tar", model_name, **overrides)
    flags = [f"--{key}={value}" for key, value in overrides.items()]
    assert convert_main([str(tmp_path / "save.pth.tar"), "--model", model_name, *flags,
                         "--out", str(tmp_path / "converted")]) == 0
    genotype = overrides.get("genotype", MODEL_ARGS[model_name]["genotype"])
    assert f"genotype {genotype}" in capsys.readouterr().out, "convert should say what it assumed"
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
    assert "unexpected keys cell1.cell_architecture.3.1.weight," in error
    assert "missing keys none" in error
    torch.save({"state_dict": {"stem.0.weight": torch.zeros(16, 1, 3, 3)}}, tmp_path / "bad.pth")
    assert convert_main([str(tmp_path / "bad.pth"), "--model", "snasnet_fmnist", "--out",
                         str(tmp_path / "out")]) == 1
    assert "missing keys cell1.edges.0_1.bn.bias," in capsys.readouterr().err


def test_convert_accepts_dataparallel_bare_and_annotated_checkpoints(tmp_path):
    reference = _authors_checkpoint(tmp_path / "save.pth.tar", "snasnet_fmnist")
    state_dict = reference.state_dict()
    forms = {"module": {"state_dict": {f"module.{key}": value for key, value in state_dict.items()}},
             "bare": state_dict,
             "annotated": {"state_dict": state_dict, "epoch": 299, "best_acc": 91.5,
                           "optimizer": torch.optim.SGD(reference.parameters(), 0.1).state_dict()}}
    assert convert_main([str(tmp_path / "save.pth.tar"), "--model", "snasnet_fmnist",
                         "--out", str(tmp_path / "plain")]) == 0
    expected = safetensors.torch.load_file(tmp_path / "plain" / "model.safetensors")
    for name, checkpoint in forms.items():
        torch.save(checkpoint, tmp_path / f"{name}.pth.tar")
        assert convert_main([str(tmp_path / f"{name}.pth.tar"), "--model", "snasnet_fmnist",
                             "--out", str(tmp_path / name)]) == 0, name
        converted = safetensors.torch.load_file(tmp_path / name / "model.safetensors")
        assert converted.keys() == expected.keys(), name
        for key in expected:
            assert torch.equal(converted[key], expected[key]), f"{name}: {key} differs"


def _namespace_checkpoint(path, state_dict):
    import argparse
    torch.save({"state_dict": state_dict, "args": argparse.Namespace(lr=0.1)}, path)


def _truncated_checkpoint(path, state_dict):
    torch.save({"state_dict": state_dict}, path)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


@pytest.mark.parametrize("write, expected", [
    (_namespace_checkpoint, "holds Python objects besides tensors (argparse.Namespace), which "
                            "snnzoo does not load"),
    (_truncated_checkpoint, "is truncated or corrupted (RuntimeError: PytorchStreamReader failed "
                            "reading zip archive: failed finding central directory): download "
                            "it again"),
    (lambda path, _: path.write_text("epoch,loss\n1,2.3\n"), "is not a PyTorch checkpoint"),
    (lambda path, state_dict: torch.save({"net": state_dict, "epoch": 3}, path),
     "it has no 'state_dict' entry and is no state dict itself: it is a dict of 'net' "
     "(OrderedDict), 'epoch' (int)."),
    (lambda path, state_dict: (path.mkdir(), torch.save(state_dict, path / "save.pth.tar")),
     "is a directory: pass the checkpoint file in it"),
])
def test_convert_says_what_an_unreadable_checkpoint_is(tmp_path, capsys, write, expected):
    state_dict = _authors_checkpoint(tmp_path / "good.pth.tar", "snasnet_fmnist").state_dict()
    write(tmp_path / "bad.pth.tar", state_dict)
    status = convert_main([str(tmp_path / "bad.pth.tar"), "--model", "snasnet_fmnist",
                           "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert status == 1 and not (tmp_path / "out").exists()
    assert error.startswith(f"error: {tmp_path / 'bad.pth.tar'} ") and expected in error, error
    assert "Traceback" not in error and len(error.splitlines()) == 1, error


def test_convert_names_the_checkpoints_convolutions_and_width(tmp_path, capsys):
    _authors_checkpoint(tmp_path / "forward.pth.tar", "snasnet_fmnist", genotype="0314 0023 0004 0000",
                        cell="forward")
    assert convert_main([str(tmp_path / "forward.pth.tar"), "--model", "snasnet_fmnist",
                         "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert ("its convolutions sit at the genotype entries (row,column) (0,1)=3 (1,2)=2 (1,3)=3, "
            "genotype 0302 0030 3003 0000 has them at (0,1)=3 (0,3)=2 (1,2)=3 (2,0)=3 (2,3)=3"
            in error), error
    assert len(error) < 1000, f"the key lists should be shortened:\n{error}"
    _authors_checkpoint(tmp_path / "narrow.pth.tar", "snasnet_fmnist", width=32)
    assert convert_main([str(tmp_path / "narrow.pth.tar"), "--model", "snasnet_fmnist",
                         "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "the checkpoint's network is 32 channels wide, snasnet_fmnist 64" in error, error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, expected", [
    (lambda state: state["stem.0.weight"].view(-1)[7].fill_(float("nan")),
     "holds NaN or infinite values in 1 tensor(s) (stem.0.weight)"),
    (lambda state: state.__setitem__("classifier.3.weight",  # the authors' name of fc
                                     state["classifier.3.weight"].round().to(torch.int64)),
     "1 tensor(s) of another kind of dtype (file vs model), which loading would convert: "
     "fc.weight torch.int64 vs torch.float32"),
], ids=["nan", "integer"])
def test_convert_refuses_diverged_or_integer_weights(tmp_path, capsys, damage, expected):
    # Loading would keep the NaN or convert the integers silently: a model that computes nonsense.
    _authors_checkpoint(tmp_path / "save.pth.tar", "snasnet_fmnist")
    state = torch.load(tmp_path / "save.pth.tar", weights_only=True)["state_dict"]
    damage(state)
    torch.save({"state_dict": state}, tmp_path / "save.pth.tar")
    assert convert_main([str(tmp_path / "save.pth.tar"), "--model", "snasnet_fmnist",
                         "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert expected in error, error
    assert not (tmp_path / "out").exists()


def test_convert_of_an_unreachable_hub_model_is_one_error_line(tmp_path, capsys, hub_env):
    hub_env(closed_port_url())
    _authors_checkpoint(tmp_path / "save.pth.tar", "snasnet_fmnist")
    assert convert_main([str(tmp_path / "save.pth.tar"), "--model", "hf-hub:someone/variant",
                         "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: Cannot download config.json from someone/variant"), error


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
    # the registered cfg itself: timm's public get_pretrained_cfg returns a copy, and timm has
    # no public way to change a registered cfg
    cfg = timm.models._registry._model_pretrained_cfgs["snasnet_fmnist"]
    monkeypatch.setattr(cfg, "hf_hub_sha256", sha256)
    model = timm.create_model("snasnet_fmnist", pretrained=True, **SMALL).eval()
    images = torch.randn(2, 1, 28, 28)
    assert_close(model(images), original(images), 0, 0, "logits")
    with pytest.warns(UserWarning, match="fc\\) is newly initialised"):
        adapted = snnzoo.create_model("snasnet_fmnist", pretrained=True, num_classes=3, **SMALL)
    assert adapted(images).shape == (2, 3)
    assert_close(adapted.stem[0].weight, original.stem[0].weight, 0, 0, "kept stem")
    with pytest.warns(UserWarning, match=r"first convolution \(stem.0.weight\) is adapted"):
        adapted = snnzoo.create_model("snasnet_fmnist", pretrained=True, in_chans=3, **SMALL)
    assert adapted(torch.randn(1, 3, 28, 28)).shape == (1, 10)
    monkeypatch.setattr(cfg, "hf_hub_sha256", "0" * 64)
    with pytest.raises(hub.WeightsIntegrityError, match="snnzoo/snasnet_fmnist"):
        snnzoo.create_model("snasnet_fmnist", pretrained=True, **SMALL)


def _saved(tmp_path, name="saved", **model_kwargs):
    """A small snasnet_fmnist saved as a model folder, and the model."""
    torch.manual_seed(0)
    model = excite_snnzoo(snnzoo.create_model("snasnet_fmnist", **SMALL, **model_kwargs))
    folder = hub.save_pretrained(model, tmp_path / name)
    return model.eval(), folder / "model.safetensors"


def excite_snnzoo(model):
    """Random BatchNorm statistics and affine parameters, so that spikes reach the logits."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 1.0)
            module.bias.data.copy_(torch.rand(module.num_features, generator=generator))
    return model


def _load(path, **kwargs):
    return snnzoo.create_model("snasnet_fmnist", pretrained=True, **{**SMALL, **kwargs},
                               pretrained_cfg_overlay=dict(file=str(path)))


def test_a_file_with_its_own_classifier_loads_whole_when_asked(tmp_path):
    original, path = _saved(tmp_path, num_classes=3)
    model = _load(path, num_classes=3).eval()
    images = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    assert original(images).abs().max() > 0.01, "the test network should reach its output"
    assert_close(model(images), original(images), 0, 0, "logits of the 3-class file")
    assert "state_dict" not in model.pretrained_cfg, "the weights are not kept a second time"
    with pytest.raises(WeightsMismatchError, match=r"has 30 output neurons .*snasnet_fmnist 100 "
                                                   r"\(10 classes x 10 neurons\): pass num_classes=3"):
        _load(path)
    with pytest.warns(UserWarning, match=r"have 30 output neurons, the model 100") as warned:
        adapted = _load(path, num_classes=10)
    assert warned[0].filename == __file__, "the warning should point at the caller's line"
    assert_close(adapted.stem[0].weight, original.stem[0].weight, 0, 0, "kept stem")


def test_num_classes_0_drops_the_files_classifier_silently_as_timm_does(tmp_path):
    original, path = _saved(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no classifier is left to train: nothing to warn about
        model = _load(path, num_classes=0).eval()
    images = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    pooled = original.forward_head(original.forward_features(images), pre_logits=True)
    assert pooled.abs().max() > 0, "the test network should reach its classifier"
    assert_close(model(images), pooled, 0, 0, "num_classes=0 output against pre_logits")
    assert model(images).shape == (2, model.head_hidden_size)


@pytest.mark.parametrize("damage, message", [
    ("drop", r"1 key\(s\) missing: cell1.edges.0_1.conv.weight"),
    ("extra", r"1 unexpected key\(s\): extra.weight"),
    ("int", r"another kind of dtype .*cell1.edges.0_1.conv.weight torch.int32 vs torch.float32"),
])
def test_weights_that_do_not_fit_are_refused_whole(tmp_path, damage, message):
    _, path = _saved(tmp_path)
    weights = hub.load_state_dict(path)
    key = "cell1.edges.0_1.conv.weight"
    if damage == "drop":
        del weights[key]
    elif damage == "extra":
        weights["extra.weight"] = torch.zeros(2)
    else:
        weights[key] = (weights[key] * 100).to(torch.int32)
    damaged = tmp_path / "damaged.safetensors"  # no config.json beside it
    safetensors.torch.save_file(weights, damaged)
    for num_classes in ({}, dict(num_classes=3)):  # adapting the classifier checks the rest too
        with pytest.raises(WeightsMismatchError, match=message):
            _load(damaged, **num_classes)


def test_weights_of_another_model_are_refused_naming_the_file(tmp_path):
    _, path = _saved(tmp_path)
    bare = tmp_path / "bare.safetensors"  # no config.json beside it: the shapes tell
    bare.write_bytes(path.read_bytes())
    for file, message in ((path, r"saved.model.safetensors was saved from a network with "
                                 r"neurons_per_class 10 \(the model: 5\)"),
                          (bare, r"bare.safetensors does not fit snasnet_cifar100 .*shape")):
        with pytest.raises(WeightsMismatchError, match=message):
            snnzoo.create_model("snasnet_cifar100", pretrained=True, **SMALL,
                                pretrained_cfg_overlay=dict(file=str(file)))


def test_a_folder_saved_from_another_genotype_is_refused(tmp_path):
    # The same shapes (one conv 3x3 edge moved elsewhere would not be), another computation:
    # a feedback edge 3 -> 0 of type skip has no parameters.
    _, path = _saved(tmp_path, genotype="0302 0030 3003 1000")
    with pytest.raises(WeightsMismatchError, match=r"genotype '0302 0030 3003 1000' \(the model: "
                                                   r"'0302 0030 3003 0000'\)"):
        _load(path)
    model = _load(path, genotype="0302-0030-3003-1000")  # the same genotype, written otherwise
    assert model.genotype == "0302 0030 3003 1000"


@pytest.mark.parametrize("saved_with", [dict(neurons_per_class=5), dict(v_threshold=0.5),
                                        dict(tau=2.0)])
def test_a_folder_saved_with_other_neurons_is_refused(tmp_path, saved_with):
    _, path = _saved(tmp_path, **saved_with)
    (key, value), = saved_with.items()
    with pytest.raises(WeightsMismatchError, match=rf"{key} {value!r} \(the model: .*"
                                                   rf"create_model\(..., {key}={value!r}"):
        _load(path)
    _load(path, **saved_with)
    _load(path, **saved_with, timesteps=3)  # the number of steps may differ


def test_pretrained_strict_false_is_refused():
    for strict in (False, 0):
        with pytest.raises(ValueError, match=f"pretrained_strict={strict}: .*every tensor of its "
                                             f"weights or none"):
            snnzoo.create_model("snasnet_fmnist", pretrained_strict=strict)


def test_hf_hub_name_at_a_revision(server):  # noqa: F811
    _publish(server, "someone/fmnist-tiny", timesteps=3)
    torch.manual_seed(1)
    other = snnzoo.create_model("snasnet_fmnist", **SMALL, timesteps=2).eval()
    folder = hub.save_pretrained(other, server.root / "staging" / "branch")
    server.commit_files("someone/fmnist-tiny", {p.name: p.read_bytes() for p in folder.iterdir()},
                        revision="v2")
    model = snnzoo.create_model("hf-hub:someone/fmnist-tiny@v2", pretrained=True).eval()
    images = torch.randn(2, 1, 28, 28)
    assert model.timesteps == 2
    assert_close(model(images), other(images), 0, 0, "logits of the branch's weights")


def test_hf_hub_name_with_the_hub_unreachable_fails_fast(hub_env):  # noqa: F811
    from test_hub import closed_port_url
    hub_env(closed_port_url())
    start = time.monotonic()
    with pytest.raises(hub.HubUnreachableError, match=r"config.json from someone/fmnist-tiny.*"
                                                      r"cannot reach the Hub"):
        snnzoo.create_model("hf-hub:someone/fmnist-tiny", pretrained=True)
    assert time.monotonic() - start < 10, "a cold cache must fail without retrying"


def test_hf_hub_name_of_another_library_is_refused_without_fetching_weights(server):  # noqa: F811
    config = {"architecture": "resnet18", "num_classes": 10, "pretrained_cfg": {}}
    server.commit_files("someone/resnet", {"config.json": json.dumps(config).encode(),
                                           "pytorch_model.bin": b"never fetched"})
    with pytest.raises(ValueError, match=r"'resnet18' model .* not one of snnzoo's"):
        snnzoo.create_model("hf-hub:someone/resnet", pretrained=True)
    server.commit_files("someone/broken", {"config.json": b"{not json"})
    with pytest.raises(hub.WeightsError, match=r"config.json from someone/broken is not a JSON"):
        snnzoo.create_model("hf-hub:someone/broken")


@pytest.mark.slow
def test_hf_hub_name_of_a_searched_variant_needs_no_registration(server, tmp_path):  # noqa: F811
    from snnzoo.models.variants import register_variant
    args = dict(MODEL_ARGS["snasnet_fmnist"], **SMALL, genotype="0304 0002 0000 0000")
    register_variant("snasnet_hubtest_variant", args,  # as the search registers its winner
                     timm.models.get_pretrained_cfg("snasnet_fmnist").to_dict())
    torch.manual_seed(0)
    original = snnzoo.create_model("snasnet_hubtest_variant").eval()
    folder = hub.save_pretrained(original, server.root / "staging" / "variant")
    server.commit_files("someone/variant", {p.name: p.read_bytes() for p in folder.iterdir()})
    images = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.save(images, tmp_path / "images.pt")
    code = ("import snnzoo, torch; model = snnzoo.create_model('hf-hub:someone/variant', "
            "pretrained=True).eval(); print(model.genotype); "
            f"torch.save(model(torch.load({str(tmp_path / 'images.pt')!r})), "
            f"{str(tmp_path / 'logits.pt')!r})")
    # Another machine; its neurons eager (what is tested is the Hub name: compiling the CPU
    # path would cost the fresh process most of its time, and both paths fire alike).
    env = {**os.environ, "SNNZOO_VARIANTS_DIR": str(tmp_path / "no-variants"),
           "SNNZOO_COMPILE_CPU": "0"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0304", "0002", "0000", "0000"]
    assert_close(torch.load(tmp_path / "logits.pt"), original(images), 0, 0, "logits")


def test_weights_of_another_repo_are_not_held_to_the_registered_digest(server, monkeypatch):  # noqa: F811
    _, sha256 = _publish(server, "someone/fine-tuned")
    cfg = timm.models._registry._model_pretrained_cfgs["snasnet_fmnist"]  # as above
    monkeypatch.setattr(cfg, "hf_hub_sha256", "0" * 64)  # the registered repo's digest
    model = snnzoo.create_model("snasnet_fmnist", pretrained=True, **SMALL,
                                pretrained_cfg_overlay=dict(hf_hub_id="someone/fine-tuned"))
    assert model.genotype == "0302 0030 3003 0000"
    with pytest.raises(hub.WeightsIntegrityError):  # a digest given with it still applies
        snnzoo.create_model("snasnet_fmnist", pretrained=True, **SMALL, pretrained_cfg_overlay=dict(
            hf_hub_id="someone/fine-tuned", hf_hub_sha256="1" * 64))


def test_convert_never_deletes_what_is_in_its_out_folder(tmp_path, capsys):
    (tmp_path / "work").mkdir()
    _authors_checkpoint(tmp_path / "work" / "save.pth.tar", "snasnet_fmnist")
    (tmp_path / "work" / "thesis.tex").write_text("months of work")
    status = convert_main([str(tmp_path / "work" / "save.pth.tar"), "--model", "snasnet_fmnist",
                           "--out", str(tmp_path / "work")])
    assert status == 1 and "not a model folder" in capsys.readouterr().err
    assert sorted(path.name for path in (tmp_path / "work").iterdir()) == ["save.pth.tar",
                                                                        "thesis.tex"]


def test_convert_writes_only_into_a_new_empty_or_its_own_folder(tmp_path, capsys):
    # Into a trained model's folder it kept the old card's accuracy claims and pictures, deleted
    # its log and rewrote only the sha256, so publish's consistency check passed.
    import shutil
    from pathlib import Path
    _authors_checkpoint(tmp_path / "save.pth.tar", "snasnet_fmnist")
    trained = tmp_path / "trained"
    shutil.copytree(Path(__file__).resolve().parents[1] / "model_cards" / "snasnet_fmnist", trained)
    before = {path.name: path.read_bytes() for path in trained.iterdir()}
    convert = [str(tmp_path / "save.pth.tar"), "--model", "snasnet_fmnist"]
    assert convert_main([*convert, "--out", str(trained)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "which convert did not write" in error
    assert "curves.png" in error and error.count("\n") == 1
    assert {path.name: path.read_bytes() for path in trained.iterdir()} == before
    (tmp_path / "empty").mkdir()
    for out in ("new", "empty", "new"):  # the last: convert's own folder, written again
        assert convert_main([*convert, "--out", str(tmp_path / out)]) == 0
    assert hub.validate_model_folder(tmp_path / "new") == []
