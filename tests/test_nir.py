"""NIR export and import (snnzoo.nir_exchange, python -m snnzoo.export_nir).

Three checks of what a file holds: the round trip on the published snasnet_fmnist weights
(export -> nir.write -> nir.read -> import), the graph simulated step by step by
tests/nir_reference.py (numpy, written from NIR's node equations, not from snnzoo's code),
and a peer that reads NIR (SpikingJelly 2.0's importer) on a forward-cell model."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import snnzoo
from conftest import assert_close, assert_equal
from snnzoo.data import load_dataset
from snnzoo.nir_exchange import (NIRExportError, NIRImportError, export_nir, from_nir,
                                 import_nir, nir_form, to_nir)

nir = pytest.importorskip("nir")
from nir_reference import simulate  # noqa: E402  (needs nir)

FOLDER = Path(__file__).resolve().parents[1] / "model_cards" / "snasnet_fmnist"
# Every operation, forward and fed back: skip, conv1x1, conv3x3 and avgpool edges.
EVERY_OPERATION = "0124 0034 1003 0420"


def _fmnist(**kwargs):
    return snnzoo.create_model("snasnet_fmnist", pretrained=True, pretrained_cfg_overlay=dict(
        file=str(FOLDER / "model.safetensors")), **kwargs).eval()


@pytest.fixture(scope="module")
def images():
    """16 real Fashion-MNIST test images (of every class), normalised as the model was trained."""
    data = load_dataset("fashion-mnist-sample", "test")
    return torch.stack([data[i][0] for i in range(0, 400, 25)])


def _tiny(genotype=EVERY_OPERATION, cell="backward", seed=0):
    """A small network whose BatchNorms have statistics of their own (so that folding them
    matters) and whose neurons fire."""
    torch.manual_seed(seed)
    model = snnzoo.create_model("snasnet_fmnist", genotype=genotype, cell=cell, width=4,
                                img_size=8, classifier_width=16, num_classes=3,
                                neurons_per_class=2, head_init_std=0.5)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(0.0, 1.0)
    return model.eval()


def _run(model, x):
    """Logits and each LIF layer's spikes [T, B, ...] (from its spike hooks)."""
    spikes = {}
    names = {module: name for name, module in model.named_modules()
             if isinstance(module, snnzoo.layers.LIF)}

    def record(lif, out, multistep):
        spikes.setdefault(names[lif], []).append(out if multistep else out.unsqueeze(0))

    handles = [lif.register_spike_hook(record) for lif in names]
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return logits, {name: torch.cat(steps) for name, steps in spikes.items()}


def _float64(model):
    return copy.deepcopy(model).double().set_backend("torch")


def test_round_trip_on_published_weights(tmp_path, images):
    """export -> nir.write -> nir.read -> import computes exactly what nir_form (BatchNorm
    folded as the file holds it) computes: equal logits and spikes, bit for bit. Against
    the model itself: the same predictions; in float64 the same spikes and logits, and in
    float32 spike counts that differ by float rounding only."""
    model = _fmnist()
    path = export_nir(model, tmp_path / "fmnist.nir")
    imported = import_nir(path)
    assert imported.genotype == model.genotype and imported.timesteps == model.timesteps

    logits, spikes = _run(imported, images)
    folded_logits, folded_spikes = _run(nir_form(model), images)
    assert_equal(logits, folded_logits, "logits of the imported model vs nir_form")
    assert spikes.keys() == folded_spikes.keys()
    for name in spikes:
        assert_equal(spikes[name], folded_spikes[name], f"spikes of {name}")

    original_logits, original_spikes = _run(model, images)
    assert_equal(logits.argmax(1), original_logits.argmax(1), "predictions")
    for name in spikes:  # folding rounds differently: a few membranes at the threshold flip
        difference = abs(int(spikes[name].sum()) - int(original_spikes[name].sum()))
        assert difference <= 1e-3 * original_spikes[name].numel(), name

    logits64, spikes64 = _run(_float64(imported), images[:4].double())
    original64, original_spikes64 = _run(_float64(model), images[:4].double())
    assert_close(logits64, original64, 1e-9, 0, "float64 logits")
    for name in spikes64:
        assert int(spikes64[name].sum()) == int(original_spikes64[name].sum()), name


@pytest.mark.parametrize("name", snnzoo.list_models())
def test_every_registered_variant(name):
    """Each registered architecture (its genotype, cell, pools, stem stride, image size and
    classes; narrowed to width 8, which changes only channel counts) goes to a graph and back
    to the parameters of its nir_form, exactly."""
    model = snnzoo.create_model(name, width=8, classifier_width=32).eval()
    graph = to_nir(model)
    assert graph.metadata["timesteps"] == model.timesteps
    imported = from_nir(graph)
    assert imported.model_args == model.model_args
    for key, tensor in nir_form(model).state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert_equal(imported.state_dict()[key], tensor, key)


def test_threshold_rule_by_hand(tmp_path):
    """NIR fires on v > v_threshold, snnzoo on v >= threshold: the file holds the float32 just
    below 1.0, 1 - 2^-24 = 0.99999994, and import restores 1.0 exactly."""
    model = _tiny()
    graph = to_nir(model)
    lif = graph.nodes["pre_lif"]
    assert lif.v_threshold.dtype == np.float64
    assert np.all(lif.v_threshold == 1.0 - 2.0 ** -24)
    assert np.all(lif.tau == (4.0 / 3.0) * 1e-4) and np.all(lif.r == 1.0)
    assert np.all(lif.v_leak == 0.0) and np.all(lif.v_reset == 0.0)
    assert np.float32(1.0) > np.float32(lif.v_threshold[0])  # a membrane of exactly 1 fires
    assert not np.float32(1.0 - 2.0 ** -24) > np.float32(lif.v_threshold[0])
    assert from_nir(graph).pre_lif.v_threshold == 1.0
    assert graph.metadata["dt"] == 1e-4 and graph.metadata["timesteps"] == model.timesteps


def _compare_with_reference(model, graph, x):
    """The graph simulated by nir_reference fires as the model does in float64, layer by
    layer and step by step, and its output averaged over T is the model's logits."""
    steps = model.timesteps
    inputs = np.broadcast_to(x.double().numpy(), (steps, *x.shape))
    simulated = simulate(graph, inputs, dt=graph.metadata["dt"])
    logits, spikes = _run(_float64(model), x.double())
    dead = set(spikes) - set(simulated["spikes"])  # neurons whose spikes reach no output
    assert not set(simulated["spikes"]) - set(spikes)
    assert all(not any(edge[0].startswith(name.rsplit(".", 1)[0]) for edge in graph.edges)
               for name in dead)
    for name in simulated["spikes"]:
        assert_equal(torch.from_numpy(simulated["spikes"][name]), spikes[name], f"spikes of {name}")
    assert_close(torch.from_numpy(simulated["output"].mean(0)), logits, 1e-9, 0, "logits")
    return spikes


def test_reference_interpreter_on_published_weights(images):
    model = _fmnist()
    spikes = _compare_with_reference(model, to_nir(model), images[:4])
    assert all(int(layer.sum()) > 0 for layer in spikes.values())  # every layer fires


@pytest.mark.parametrize("cell, genotype, kinds", [
    ("backward", EVERY_OPERATION, {"Delay"}),
    ("forward", "0124 0034 0003 0000", set()),
    ("forward", "0101 0001 0000 0000", {"Scale"}),  # two skip paths: the input counts twice
    ("backward", "0113 1012 2203 0420", {"Delay", "Scale"}),
    ("forward", "0302 0030 0000 0000", set()),  # node 2 leads nowhere: left out
    ("backward", "0404 0000 1000 0000", set()),  # node 2 sends back the nothing it receives
])
def test_reference_interpreter_every_operation(tmp_path, cell, genotype, kinds):
    """Skip, 1x1, 3x3 and pool edges, forward and fed back through one-step delays, parallel
    paths, nodes that lead nowhere or receive nothing: the file's graph fires as the model
    does; so does the model imported from it."""
    model = _tiny(genotype, cell)
    x = torch.randn(3, 1, 8, 8) * 2
    path = export_nir(model, tmp_path / "tiny.nir")
    graph = nir.read(path)
    assert {"Delay", "Scale"} & {type(node).__name__ for node in graph.nodes.values()} == kinds
    assert len([name for name, node in graph.nodes.items() if isinstance(node, nir.Output)]) == 1
    spikes = _compare_with_reference(model, graph, x)
    assert all(int(spikes[name].sum()) > 0 for name in graph.nodes if name in spikes)
    _compare_with_reference(import_nir(path), graph, x)


def test_fused_model_exports_its_folded_pool(tmp_path):
    """A model fused by timm's reparameterize_model (the transition's pool folded into a 4x4
    convolution of stride 2) exports that convolution, and imports as it was."""
    from timm.utils import reparameterize_model

    model = reparameterize_model(_tiny())
    graph = to_nir(model)
    assert "transition.4" not in graph.nodes
    assert tuple(graph.nodes["transition.2"].weight.shape[2:]) == (4, 4)
    x = torch.randn(2, 1, 8, 8) * 2
    _compare_with_reference(model, graph, x)
    imported = import_nir(export_nir(model, tmp_path / "fused.nir"))
    assert_equal(_run(imported, x)[0], _run(model, x)[0], "logits")


def test_peer_spikingjelly_reads_forward_cells(tmp_path, images):
    """SpikingJelly 2.0's NIR importer runs a forward-cell model exported by snnzoo (the
    published weights without the feedback edge) to the same predictions and logits."""
    importer = pytest.importorskip("spikingjelly.activation_based.nir_exchange")
    model = snnzoo.create_model("snasnet_fmnist", genotype="0302 0030 0003 0000",
                                cell="forward").eval()
    published = _fmnist().state_dict()
    model.load_state_dict({key: value for key, value in published.items()
                           if not key.startswith(("cell1.edges.2_0", "cell2.edges.2_0"))})
    peer = importer.import_from_nir(export_nir(model, tmp_path / "forward.nir"))
    with torch.no_grad():
        logits = nir_form(model)(images)  # BatchNorm folded as in the file (see the round trip)
        state, votes = None, []
        for _ in range(model.timesteps):  # the image at every step; the state carried on
            vote, state = peer(images, state)
            votes.append(vote)
    peer_logits = torch.stack(votes).mean(0)
    assert_equal(peer_logits.argmax(1), logits.argmax(1), "predictions")
    assert_close(peer_logits, logits, 1e-5, 0, "logits")  # votes sum in another order


def test_bad_models_are_refused():
    with pytest.raises(NIRExportError, match="takes an SNASNet"):
        to_nir(nn.Linear(2, 2))
    model = _tiny()
    model.pre_lif.v_reset = None
    with pytest.raises(NIRExportError, match="pre_lif resets softly"):
        to_nir(model)
    with pytest.raises(NIRExportError, match="no classifier"):
        to_nir(_tiny().eval().__class__(width=4, img_size=8, in_chans=1, classifier_width=8,
                                        num_classes=0))
    with pytest.raises(ValueError, match="dt=0"):
        to_nir(_tiny(), dt=0)
    with pytest.warns(UserWarning, match="no path from node 0"):
        cut = _tiny("0000 2000 4002 4340")
    with pytest.raises(NIRExportError, match="the output depends on no input"):
        to_nir(cut)
    with pytest.raises(NIRExportError, match="cell1.edges.1_2.lif receives no input"):
        to_nir(_tiny("0003 0020 0000 0000", "forward"))  # node 1 is fed nothing


def test_training_mode_model_exports_as_in_eval():
    model = _tiny().train()
    graph = to_nir(model)
    assert model.training and model.cell1.training
    assert_close(torch.from_numpy(graph.nodes["stem.0"].weight),
                 nir_form(model).stem[0].weight.detach(), 0, 0, "folded stem")


def _write(tmp_path, graph, name="graph.nir"):
    path = tmp_path / name
    nir.write(path, graph)
    return path


def test_bad_files_are_refused_naming_the_node(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nir"):
        import_nir(tmp_path / "missing.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not an HDF5 file")
    with pytest.raises(NIRImportError, match="junk.nir is not a NIR graph"):
        import_nir(junk)
    truncated = tmp_path / "truncated.nir"
    whole = export_nir(_tiny(), tmp_path / "whole.nir").read_bytes()
    truncated.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(NIRImportError, match="truncated.nir is not a NIR graph"):
        import_nir(truncated)

    foreign = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
                                     nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2),
                                             v_threshold=np.ones(2)))
    with pytest.raises(NIRImportError, match="not written by snnzoo.export_nir"):
        import_nir(_write(tmp_path, foreign, "foreign.nir"))

    graph = to_nir(_tiny())
    conv = graph.nodes["cell1.edges.1_2.conv"]
    conv.weight = conv.weight[:, :, :1, :1].copy()
    with pytest.raises(NIRImportError, match=r"'cell1.edges.1_2.conv' has weight of shape "
                                             r"\(4, 4, 1, 1\); the architecture has \(4, 4, 3, 3\)"):
        from_nir(graph)

    graph = to_nir(_tiny())
    graph.nodes["cell2.edges.0_2.lif"].tau[0, 0, 0] *= 2
    with pytest.raises(NIRImportError, match="'cell2.edges.0_2.lif' has tau that differs"):
        from_nir(graph)

    graph = to_nir(_tiny())
    graph.nodes["transition.0"].weight[0, 1] = 0.5
    with pytest.raises(NIRImportError, match="'transition.0' has a 1x1 convolution that mixes"):
        from_nir(graph)

    graph = to_nir(_tiny())
    del graph.nodes["cell1.edges.3_1.delay"]
    with pytest.raises(NIRImportError, match=r"nodes missing: cell1.edges.3_1.delay"):
        from_nir(graph)

    graph = to_nir(_tiny())
    graph.edges.remove(("stem.0", "cell1.edges.0_2.lif"))
    with pytest.raises(NIRImportError, match="missing stem.0 -> cell1.edges.0_2.lif"):
        from_nir(graph)

    for key, value, message in (("dt", 0.0, "'dt' = 0.0 is not a positive"),
                                ("dt", "abc", "'dt' = 'abc' is not a number"),
                                ("timesteps", 2.5, "'timesteps' = 2.5 is not a finite int"),
                                ("snnzoo_architecture", "[5]", "not a JSON object"),
                                ("snnzoo_architecture", '{"model_args": {"pretrained": true}}',
                                 r"unknown: \['pretrained'\]")):
        graph = to_nir(_tiny())
        graph.metadata[key] = value
        with pytest.raises(NIRImportError, match=message):
            from_nir(graph)
    graph = to_nir(_tiny())
    graph.metadata["snnzoo_architecture"] = graph.metadata["snnzoo_architecture"].replace(
        '"width": 4', '"width": 65536')
    with pytest.raises(NIRImportError, match=r"'stem.0' does not fit .* \(4,\) where it "
                                             r"records 65536"):
        from_nir(graph)  # refused before a network of that width is built

    graph = to_nir(_tiny())
    graph.nodes["stem.0"].bias = graph.nodes["stem.0"].bias.astype(np.complex64)
    with pytest.raises(NIRImportError, match="'stem.0' has bias of dtype complex64"):
        from_nir(graph)

    graph = to_nir(_tiny())
    graph.nodes["pre_lif"] = nir.IF(r=np.ones(16), v_threshold=np.ones(16))
    with pytest.raises(NIRImportError, match="'pre_lif' is a IF; the architecture has a LIF"):
        from_nir(graph)


def test_export_is_atomic(tmp_path, monkeypatch):
    """A failed write leaves the file that was there and no temporary one."""
    path = export_nir(_tiny(seed=1), tmp_path / "model.nir")
    before = path.read_bytes()

    def failing_write(filename, graph, **options):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export_nir(_tiny(seed=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nir"]
    with pytest.raises(IsADirectoryError, match="is a folder"):
        export_nir(_tiny(), tmp_path)


def test_command_line(tmp_path, capsys):
    from snnzoo.export_nir import main

    out = tmp_path / "fmnist.nir"
    assert main(["snasnet_fmnist", "--checkpoint", str(FOLDER), "--out", str(out)]) == 0
    assert "snasnet_fmnist ->" in capsys.readouterr().out
    imported = import_nir(out)
    reference = nir_form(_fmnist())
    for key, tensor in reference.state_dict().items():
        if not key.endswith("num_batches_tracked"):  # eval mode never reads it
            assert_equal(imported.state_dict()[key], tensor, key)
    assert imported.pretrained_cfg["architecture"] == "snasnet_fmnist"
    with pytest.raises(SystemExit):
        main(["snasnet_fmnist", "--untrained", "--out", str(tmp_path)])
    assert "is a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["snasnet_fmnist", "--untrained", "--out", str(out), "--dt", "-1"])
    assert "greater than 0" in capsys.readouterr().err
    assert callable(snnzoo.export_nir)  # the module, once imported, calls the function
