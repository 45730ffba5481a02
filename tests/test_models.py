"""SNASNet entrypoints: registry-driven checks, equality with the authors' network, cells."""

import copy

import pytest
import timm
import torch

import snnzoo
from conftest import assert_close, assert_equal
from snnzoo.convert import convert_state_dict
from snnzoo.models import SNASNet, parse_genotype
from snnzoo.models.reference import AuthorsSNASNet, excite
from snnzoo.models.snasnet import MODEL_ARGS

SMALL = dict(width=4, classifier_width=16)
MODEL_NAMES = snnzoo.list_models()
REGISTERED_AT_IMPORT = timm.list_models("snasnet*")  # read at collection, before any test registers a variant


def _images(model_name, batch=2, seed=0):
    cfg = timm.models.get_pretrained_cfg(model_name)
    return torch.randn(batch, *cfg.input_size, generator=torch.Generator().manual_seed(seed))


def test_registry_lists_every_entrypoint():
    assert set(MODEL_NAMES) == {"snasnet_cifar10", "snasnet_cifar100", "snasnet_tinyimagenet",
                                "snasnet_fmnist"}
    assert REGISTERED_AT_IMPORT == sorted(MODEL_NAMES)  # conftest's variants directory is empty
    assert "resnet50" in timm.list_models("resnet*"), "timm's own registry must be intact"
    assert set(timm.list_modules()) >= {"resnet", "snasnet"}


def test_timm_lists_as_pretrained_only_models_whose_weights_are_published():
    published = [name for name in MODEL_NAMES
                 if timm.models.get_pretrained_cfg(name).hf_hub_sha256 is not None]
    assert published == ["snasnet_fmnist"]
    assert timm.list_pretrained("snasnet*") == published, "pretrained=True fails for the others"
    assert timm.list_models("snasnet*", pretrained=True) == published
    assert [timm.models.is_model_pretrained(name) for name in MODEL_NAMES] == [
        name in published for name in MODEL_NAMES]
    assert snnzoo.list_pretrained() == published


@pytest.mark.parametrize("name, parameters", [("snasnet_cifar10", 19_520_356),
                                              ("snasnet_cifar100", 20_624_500)])
def test_parameter_counts_match_the_authors(name, parameters):
    model = snnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == parameters


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_backward_small(name):
    torch.manual_seed(0)
    model = snnzoo.create_model(name, **SMALL)
    x = _images(name)
    logits = model(x)
    assert logits.shape == (2, model.num_classes)
    assert torch.isfinite(logits).all()
    logits.square().sum().backward()
    for key, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{key} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{key} has a non-finite gradient"
    features = model.forward_features(x)
    assert features.shape[:3] == (model.timesteps, 2, model.num_features)
    assert ((features >= 0) & (features <= 1)).all(), "features are pooled spikes"
    assert model.forward_head(features, pre_logits=True).shape == (2, model.head_hidden_size)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_pretrained_cfg_consistency(name):
    model = snnzoo.create_model(name, **SMALL)
    cfg = model.pretrained_cfg
    args = MODEL_ARGS[name]
    assert cfg["architecture"] == name
    assert cfg["hf_hub_id"] == f"snnzoo/{name}" and cfg["hf_hub_filename"] == "model.safetensors"
    assert cfg["input_size"] == (args["in_chans"], args["img_size"], args["img_size"])
    assert cfg["num_classes"] == model.num_classes == args["num_classes"]
    assert len(cfg["mean"]) == len(cfg["std"]) == args["in_chans"]
    assert cfg["paper_ids"] == "arXiv:2201.10355" and cfg["license"]
    assert cfg["genotype"] == model.genotype == args["genotype"]
    assert cfg["cell"] == args["cell"] and cfg["timesteps"] == model.timesteps == 5
    assert model.get_classifier() is model.fc
    assert dict(model.named_modules())[cfg["first_conv"]].in_channels == args["in_chans"]


# The authors' normalisation (their utils.py, data_transforms), which their checkpoints were
# trained with and which converted weights must be fed; Fashion-MNIST's is snnzoo's own.
AUTHORS_NORMALISATION = {
    "snasnet_cifar10": ([0.4913, 0.4821, 0.4465], [0.2470, 0.2434, 0.2615]),
    "snasnet_cifar100": ([0.5071, 0.4867, 0.4408], [0.2673, 0.2564, 0.2762]),
    "snasnet_tinyimagenet": ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_normalisation_is_the_authors_and_the_data_sets(name):
    from snnzoo.data import dataset_info
    from snnzoo.models.snasnet import DATASET
    cfg = snnzoo.create_model(name, **SMALL).pretrained_cfg
    if name in AUTHORS_NORMALISATION:
        assert (list(cfg["mean"]), list(cfg["std"])) == AUTHORS_NORMALISATION[name]
    info = dataset_info(DATASET[name])  # what train, validate and the search normalise with
    assert (tuple(info.mean), tuple(info.std)) == (tuple(cfg["mean"]), tuple(cfg["std"]))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_changed_num_classes_and_in_chans(name):
    model = snnzoo.create_model(name, num_classes=7, in_chans=2, **SMALL)
    size = MODEL_ARGS[name]["img_size"]
    assert model(torch.randn(3, 2, size, size)).shape == (3, 7)
    model.reset_classifier(4)
    assert model(torch.randn(1, 2, size, size)).shape == (1, 4)
    model.reset_classifier(0)
    assert model(torch.randn(1, 2, size, size)).shape == (1, model.head_hidden_size)


def test_overrides_through_kwargs():
    model = snnzoo.create_model("snasnet_cifar100", timesteps=3, genotype="0314-0023-0004-0000",
                                cell="forward", width=6, backend="torch", classifier_width=8)
    assert model.timesteps == 3 and model.genotype == "0314 0023 0004 0000"
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (3, 1, 12, 8, 8)


def test_sequence_input_brings_its_own_timesteps():
    model = snnzoo.create_model("snasnet_fmnist", **SMALL)
    assert model.forward_features(torch.randn(7, 2, 1, 28, 28)).shape[0] == 7


@pytest.mark.parametrize("shape", [(28, 28), (2, 3, 28, 28), (1, 2, 1, 2, 28, 28)])
def test_wrong_input_shape_is_a_clear_error(shape):
    model = snnzoo.create_model("snasnet_fmnist", **SMALL)
    with pytest.raises(ValueError, match=r"shape \(" + ", ".join(map(str, shape))):
        model(torch.randn(shape))
    with pytest.raises(ValueError, match=r"3 channels \(convert the pictures to greyscale "
                                         r"\(PIL's image.convert\('L'\)"):
        model(torch.randn(2, 3, 28, 28))  # what timm's transform makes of an RGB picture


def test_a_float64_model_says_how_to_run_in_float64():
    model = snnzoo.create_model("snasnet_fmnist", **SMALL).double()
    x = torch.randn(1, 1, 28, 28, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"model.set_backend\('torch'\) for a model"):
        model(x)
    assert model.set_backend("torch")(x).dtype == torch.float64


def test_unknown_model_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean snasnet_cifar10, snasnet_cifar100"):
        snnzoo.create_model("snasnet_cifar")


def test_each_forward_starts_from_rest():
    model = snnzoo.create_model("snasnet_cifar10", **SMALL).eval()
    x = _images("snasnet_cifar10")
    assert_equal(model(x), model(x), "two forwards of the same input")


# ---------------------------------------------------------------- the authors' network

GENOTYPES = [("0303 0030 2002 0200", "backward"), ("0302 0030 3003 0000", "backward"),
             ("0314 0023 0004 0000", "forward"), ("0312 1030 3002 2410", "backward"),
             ("0340 0002 0000 0000", "forward"),
             ("0003 0000 0004 0010", "backward")]  # node 1 isolated, node 2 fed back only


def _twin_models(genotype, cell, **extra):
    """snnzoo's SNASNet and the authors' network with equal weights (randomised BN stats)."""
    args = dict(MODEL_ARGS["snasnet_cifar10"], genotype=genotype, cell=cell, width=8,
                classifier_width=32, **extra)
    torch.manual_seed(0)
    reference = excite(AuthorsSNASNet(**args))
    ours = SNASNet(**args)
    ours.load_state_dict(convert_state_dict(reference.state_dict(), parse_genotype(genotype, cell),
                                            ours.state_dict().keys()))
    return ours, reference


@pytest.mark.parametrize("genotype, cell", GENOTYPES)
def test_equals_the_authors_network(genotype, cell, device):
    ours, reference = _twin_models(genotype, cell)
    ours, reference = ours.to(device), reference.to(device)
    x = (torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2).to(device)
    ours.eval(), reference.eval()
    expected = reference(x)
    assert expected.abs().max() > 0.01, "the test network should spike up to its output"
    assert_close(ours(x), expected, 1e-6, 1e-5, "eval logits")
    ours.train(), reference.train()
    with torch.no_grad():  # batch statistics, no dropout: the body of the network alone
        dropouts = [m for m in (*ours.modules(), *reference.modules()) if hasattr(m, "p")]
        for module in dropouts:
            module.p, module.saved_p = 0.0, module.p
        assert_close(ours(x), reference(x), 1e-6, 1e-5, "train logits without dropout")
        for module in dropouts:
            module.p = module.saved_p
    torch.manual_seed(5)
    expected = reference(x)
    torch.manual_seed(5)
    assert_close(ours(x), expected, 1e-6, 1e-5, "train logits (same dropout mask)")
    for (key, a), b in zip(ours.state_dict().items(), convert_state_dict(
            reference.state_dict(), ours.genotype_spec, ours.state_dict().keys()).values()):
        assert_close(a.float(), b.float(), 1e-6, 1e-5, f"running statistics {key}")


@pytest.mark.parametrize("layout, by_step", [("contiguous", None), ("channels_last", None),
                                             ("contiguous", True), ("contiguous", False)])
@pytest.mark.parametrize("genotype, cell", GENOTYPES)
def test_equals_the_authors_network_in_float64(genotype, cell, layout, by_step, device):
    # In float64 rounding cannot move a membrane across the threshold, so the two networks must
    # agree to the last bits in both modes, gradients and running statistics included, also
    # computing in channels_last (in float32 training mode its convolutions round differently
    # and batch statistics amplify that; see benchmarks/models.py, LOGITS_ATOL), and with the
    # layers outside backward cells run by step and all steps at once on any device.
    ours, reference = _twin_models(genotype, cell)
    ours = ours.double().set_backend("torch").set_by_step(by_step).to(device)
    reference = reference.double().to(device)
    if layout == "channels_last":
        ours.to(memory_format=torch.channels_last)
    x = (torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2).double()
    x, labels = x.to(device), torch.tensor([1, 2, 3, 4], device=device)
    ours.eval(), reference.eval()
    with torch.no_grad():
        expected = reference(x)
        assert expected.abs().max() > 0.01, "the test network should spike up to its output"
        assert_close(ours(x), expected, 1e-12, 0, "eval logits")
    ours.train(), reference.train()
    outputs = []
    for model in (ours, reference):
        torch.manual_seed(5)
        logits = model(x)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        outputs.append(logits)
    assert_close(outputs[0], outputs[1], 1e-12, 0, "train logits (same dropout mask)")
    expected = convert_state_dict({k: p.grad for k, p in reference.named_parameters()},
                                  ours.genotype_spec, dict(ours.named_parameters()))
    for key, parameter in ours.named_parameters():
        assert_close(parameter.grad, expected[key], 1e-12, 1e-9, f"gradient of {key}")
    expected = convert_state_dict(reference.state_dict(), ours.genotype_spec, ours.state_dict())
    for key, value in ours.state_dict().items():
        assert_close(value, expected[key], 1e-12, 1e-9, f"state {key}")


def test_channels_last_model_keeps_its_layout():
    model = snnzoo.create_model("snasnet_cifar10", **SMALL).to(memory_format=torch.channels_last)
    features = model.forward_features(_images("snasnet_cifar10"))
    assert features[0].is_contiguous(memory_format=torch.channels_last), features.stride()


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "batch-major", "h-w-swapped"])
def test_batchnorm_per_step_equals_one_batchnorm_call_per_step(momentum, layout):
    from snnzoo.models.cells import SeqBatchNorm2d
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, 6, 7, generator=generator) * 2 + 1
    grad = torch.randn(x.shape, generator=generator)
    if layout == "channels_last":
        x = x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    elif layout == "batch-major":  # a time-major view of batch-first data
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    elif layout == "h-w-swapped":
        x = x.transpose(3, 4).contiguous().transpose(3, 4)
    ours, theirs = SeqBatchNorm2d(5, momentum=momentum), torch.nn.BatchNorm2d(5, momentum=momentum)
    for module in (ours, theirs):
        with torch.no_grad():
            module.weight.copy_(torch.linspace(0.5, 2.0, 5))
            module.bias.copy_(torch.linspace(-1.0, 1.0, 5))
    results = []
    for module, run in ((ours, lambda x: module(x)),
                        (theirs, lambda x: torch.stack([theirs(x_t) for x_t in x]))):
        x_in = x.detach().requires_grad_()
        out = run(x_in) if module is theirs else module(x_in)
        out.backward(grad)
        results.append((out, x_in.grad, module.weight.grad, module.bias.grad))
    if layout in ("contiguous", "channels_last"):
        assert results[0][0].stride() == x.stride(), "the output keeps the input's layout"
    for what, a, b in zip(("output", "dL/dx", "dL/dweight", "dL/dbias"), *results):
        assert_close(a, b, 1e-6, 1e-5, what)
    for key, value in theirs.state_dict().items():
        assert_close(ours.state_dict()[key].double(), value.double(), 1e-7, 1e-6, key)
    assert int(ours.num_batches_tracked) == 3


def test_backward_cell_feedback_hand_computed():
    # 0->1 skip, 1->3 skip, feedback 3->1 skip: node 1's input at step t is x[t] plus what the
    # output sent back at t-1, so out[t] = x[t] + out[t-1]: 1, 10 + 1, 100 + 11.
    from snnzoo.models.cells import SNASCell
    cell = SNASCell(parse_genotype("0100 0001 0000 0100"), 1, {})
    x = torch.tensor([1.0, 10.0, 100.0]).view(3, 1, 1, 1, 1)
    assert cell(x).flatten().tolist() == [1.0, 11.0, 111.0]
    # 0->1, 0->3, 1->3 skips and feedback 3->0: node 0 receives twice the output back.
    # out[t] = 2 * (x[t] + out[t-1])
    cell = SNASCell(parse_genotype("0101 0001 0000 1000"), 1, {})
    assert cell(x).flatten().tolist() == [2.0, 24.0, 248.0]


@pytest.mark.parametrize("genotype, cell, by_step, computed", [
    ("0302 0030 3003 0000", "backward", None, 3),  # node 0 feeds 0->1 and 0->3, node 2 2->0, 2->3
    ("0303 0030 2002 0200", "backward", None, 4),  # node 0 feeds 0->1 and 0->3
    ("0314 0023 0004 0000", "forward", True, 2),  # node 1 feeds 1->2 and 1->3 (the CPU default)
    ("0314 0023 0004 0000", "forward", False, 3),  # sequences are module calls: each computes
])
@pytest.mark.parametrize("training", [True, False])
def test_neurons_on_one_node_fire_once(genotype, cell, by_step, computed, training, monkeypatch):
    from snnzoo.layers import LIF
    from snnzoo.layers import lif as lif_module
    from snnzoo.models.cells import SNASCell
    calls = []
    for name in ("lif_step", "lif_multistep"):
        original = getattr(lif_module, name)
        monkeypatch.setattr(lif_module, name,
                            lambda *args, original=original: calls.append(1) or original(*args))
    torch.manual_seed(0)
    model = SNASCell(parse_genotype(genotype, cell), 2, {}).train(training)
    model.by_step = by_step
    neurons = [module for module in model.modules() if isinstance(module, LIF)]
    seen = {lif: [] for lif in neurons}
    for lif in neurons:
        lif.register_spike_hook(lambda lif, spikes, multistep: seen[lif].append(spikes))
    steps = 3
    model(torch.randn(steps, 2, 2, 4, 4) * 2)
    stepped = cell == "backward" or by_step
    per_forward = steps if stepped else 1
    assert len(calls) == computed * per_forward, f"{len(calls)} neuron computations"
    for lif, outputs in seen.items():  # every neuron's hooks still see every output
        assert len(outputs) == per_forward
    twins = 0
    for key, edge in model.edges.items():  # neurons on one node see one spikes tensor
        for other_key, other in model.edges.items():
            if key < other_key and key[0] == other_key[0] and hasattr(edge, "lif") \
                    and hasattr(other, "lif"):
                twins += 1
                for ours, theirs in zip(seen[edge.lif], seen[other.lif]):
                    assert (ours is theirs) == stepped
                    assert_equal(ours, theirs, f"spikes of edges {key} and {other_key}")
    assert twins >= 1


def _randomised_batchnorm(channels, affine=True):
    """A float64 SeqBatchNorm2d (train mode) with random running statistics and affine."""
    from snnzoo.models.cells import SeqBatchNorm2d
    bn = SeqBatchNorm2d(channels, affine=affine).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3)
        if affine:
            bn.weight.uniform_(-2, 2)
            bn.bias.uniform_(-1, 1)
    return bn


@pytest.mark.parametrize("kernel_size, conv_bias, affine, layout", [
    (3, False, True, torch.contiguous_format), (1, False, True, torch.channels_last),
    (3, True, False, torch.channels_last)])
def test_fuse_conv_bn_equals_conv_then_batchnorm(kernel_size, conv_bias, affine, layout):
    from snnzoo.models.cells import SeqConv2d, fuse_conv_bn
    torch.manual_seed(0)
    conv = SeqConv2d(3, 5, kernel_size, padding=kernel_size // 2, bias=conv_bias).double()
    bn = _randomised_batchnorm(5, affine)
    conv.to(memory_format=layout)
    with pytest.raises(ValueError, match=r"model.eval\(\)"):
        fuse_conv_bn(conv, bn)  # train mode normalises with batch statistics: nothing to fold
    bn.eval()
    random_state = torch.get_rng_state()
    fused = fuse_conv_bn(conv, bn)
    assert torch.equal(torch.get_rng_state(), random_state), "fusing drew random numbers"
    assert fused.weight.is_contiguous(memory_format=layout) and fused.bias is not None
    assert fused.weight.dtype == fused.bias.dtype == torch.float64 and fused.bias.requires_grad
    x = torch.randn(2, 4, 3, 6, 6, dtype=torch.float64)  # [T, B, C, H, W]
    with torch.no_grad():
        assert_close(fused(x), bn(conv(x)), 1e-12, 1e-12, "fused float64")
        conv.float(), bn.float()
        assert_close(fuse_conv_bn(conv, bn)(x.float()), bn(conv(x.float())), 1e-5, 1e-5,
                     "fused float32")


@pytest.mark.parametrize("training", [True, False])
def test_seq_sequential_by_step_equals_all_steps_at_once(training):
    # On the CPU SeqSequential runs each timestep through all its layers; that must compute
    # what running each layer over all T steps does: outputs, gradients, running statistics.
    from snnzoo.layers import LIF
    from snnzoo.models.cells import ConvBNSequential, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d
    torch.manual_seed(0)
    stepped = ConvBNSequential(SeqBatchNorm2d(3), LIF(backend="torch"),
                               SeqConv2d(3, 4, 3, padding=1), SeqBatchNorm2d(4),
                               SeqAvgPool2d(2)).double().train(training)
    whole = copy.deepcopy(stepped)
    x = (torch.randn(4, 5, 3, 6, 6, dtype=torch.float64) * 2).requires_grad_()
    steps_seen = []
    stepped[1].register_spike_hook(lambda lif, s, multistep: steps_seen.append(multistep))
    out = stepped(x)
    expected = torch.nn.Sequential.forward(whole, x)
    assert steps_seen == [False] * 4 and stepped[1].v is None  # stepped, and left at rest
    assert 0 < float(out.ne(0).double().mean()) and out.shape == (4, 5, 4, 3, 3)
    assert_close(out, expected, 1e-12, 1e-12, "output")
    (grad,) = torch.autograd.grad((out * out).sum(), x)
    (expected_grad,) = torch.autograd.grad((expected * expected).sum(), x)
    assert grad.abs().max() > 0
    assert_close(grad, expected_grad, 1e-12, 1e-12, "input gradient")
    for (name, a), (_, b) in zip(stepped.named_buffers(), whole.named_buffers()):
        assert_close(a.double(), b.double(), 1e-12, 1e-12, name)
    assert int(stepped[0].num_batches_tracked) == (4 if training else 0)
    model = snnzoo.create_model("snasnet_fmnist", **SMALL)
    with pytest.raises(ValueError, match="by_step='yes' must be True, False or None"):
        model.set_by_step("yes")
    fused = timm.utils.reparameterize_model(model.set_by_step(False).eval())
    assert fused.transition.by_step is False and fused.final_act.by_step is False


@pytest.mark.parametrize("kernel_size, padding, pool, groups, side, layout", [
    (3, 1, 2, 1, 8, torch.channels_last), (3, 1, 2, 2, 7, torch.contiguous_format),
    (1, 0, 3, 1, 10, torch.contiguous_format), (3, 0, (2, 3), 1, 9, torch.channels_last)])
def test_fold_avg_pool_equals_conv_batchnorm_then_pool(kernel_size, padding, pool, groups, side,
                                                        layout):
    from snnzoo.models.cells import SeqAvgPool2d, SeqConv2d, fuse_conv_bn
    torch.manual_seed(0)
    conv = SeqConv2d(4, 6, kernel_size, padding=padding, groups=groups, bias=False).double()
    bn = _randomised_batchnorm(6).eval()
    conv.to(memory_format=layout)
    pooling = SeqAvgPool2d(pool, pool)
    fused = fuse_conv_bn(conv, bn, pooling)
    pool = torch.nn.modules.utils._pair(pool)
    assert fused.stride == pool and fused.kernel_size == tuple(
        kernel_size + p - 1 for p in pool) and fused.groups == groups
    assert fused.weight.is_contiguous(memory_format=layout) and not fused.training
    x = (torch.rand(2, 3, 4, side, side) < 0.3).double()  # [T, B, C, H, W] spikes, odd sides too
    with torch.no_grad():
        expected = pooling(bn(conv(x)))
        assert expected.shape == fused(x).shape
        assert_close(fused(x), expected, 1e-12, 1e-12, "conv, BN and pool as one conv")
        # By hand at one output: the mean of the 2x2 (or p x q) window of conv -> bn outputs.
        y = bn(conv(x))[1, 2, :, pool[0]:2 * pool[0], pool[1]:2 * pool[1]].mean((-1, -2))
        assert_close(fused(x)[1, 2, :, 1, 1], y, 1e-12, 1e-12, "one window")


def test_fold_avg_pool_refuses_what_is_not_one_convolution():
    from snnzoo.models.cells import (ConvBNSequential, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d,
                                     fold_avg_pool, pool_folds_into)
    conv = SeqConv2d(2, 2, 3, padding=1)
    assert pool_folds_into(conv, SeqAvgPool2d(2))
    for pool in (SeqAvgPool2d(3, 2), SeqAvgPool2d(2, 2, padding=1), SeqAvgPool2d(2, ceil_mode=True),
                 SeqAvgPool2d(2, divisor_override=3), torch.nn.MaxPool2d(2)):
        assert not pool_folds_into(conv, pool), pool
        with pytest.raises(ValueError, match="not one convolution"):
            fold_avg_pool(conv, pool)
    assert not pool_folds_into(SeqConv2d(2, 2, 3, stride=2), SeqAvgPool2d(2))
    # A pool that does not fold stays a pool after the fused pair, and the result is unchanged.
    layers = ConvBNSequential(SeqConv2d(2, 2, 3, padding=1), SeqBatchNorm2d(2), SeqAvgPool2d(3, 2))
    fused = layers.eval().fuse()
    assert isinstance(fused[2], SeqAvgPool2d) and fused[0].stride == (1, 1)
    x = torch.rand(1, 2, 9, 9)
    with torch.no_grad():
        assert_close(fused(x), layers(x), 1e-5, 1e-5, "unfolded pool")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("kernel_size, stride, padding, ceil_mode, count_include_pad", [
    (3, 1, 1, False, True), (2, 2, 0, False, True), (4, 4, 0, False, True),
    (3, 2, 1, True, False)])
def test_compiled_average_pool_gives_atens_floats(kernel_size, stride, padding, ceil_mode,
                                                  count_include_pad, layout, monkeypatch):
    # The cells' pools run compiled on float32 CPU tensors (snnzoo.kernels.avg_pool2d): the
    # same floats as ATen's pooling, forward and backward, not merely close ones.
    from snnzoo.kernels import _compiled
    monkeypatch.delenv("SNNZOO_COMPILE_CPU", raising=False)
    compiled = []
    compile_once = _compiled._compiled
    monkeypatch.setattr(_compiled, "_compiled",
                        lambda function: compiled.append(function) or compile_once(function))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 11, 13, generator=generator)
    x = x * (torch.rand(x.shape, generator=generator) < 0.3)  # spikes times weights: many zeros
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    arguments = (kernel_size, stride, padding, ceil_mode, count_include_pad)
    expected, ours = (x.clone().requires_grad_() for _ in range(2))
    expected_out = torch.nn.functional.avg_pool2d(expected, *arguments)
    ours_out = snnzoo.kernels.avg_pool2d(ours, *arguments)
    assert _compiled._compile_failure is None, _compiled._compile_failure
    assert [function.__name__ for function in compiled] == ["avg_pool2d"], "ran compiled"
    assert_equal(ours_out, expected_out, "pooled")
    assert ours_out.stride() == expected_out.stride(), "layout of the output"
    grad = torch.randn(expected_out.shape, generator=generator)
    expected_out.backward(grad)
    ours_out.backward(grad)
    assert_equal(ours.grad, expected.grad, "gradient")


@pytest.mark.parametrize("genotype, cell", GENOTYPES[:3])
def test_reparameterized_model_fires_as_the_model(genotype, cell, tmp_path):
    from timm.utils import reparameterize_model

    from snnzoo import hub
    from snnzoo.layers import LIF
    ours, _ = _twin_models(genotype, cell)  # randomised BatchNorm statistics and affine
    ours = ours.double().set_backend("torch").eval()
    fused = reparameterize_model(ours)
    with pytest.raises(ValueError, match="train the model before fusing"):
        fused.train()
    with pytest.raises(ValueError, match="save the model before fusing"):
        hub.save_pretrained(fused, tmp_path / "fused")
    assert not (tmp_path / "fused").exists()
    left = [name for name, m in fused.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert left == ["transition.0", "final_act.0"]  # the two that precede a neuron, not a conv
    pooled = fused.transition[2]  # conv 3x3 -> BN -> avg-pool 2 as one 4x4 conv of stride 2
    assert pooled.kernel_size == (4, 4) and pooled.stride == (2, 2)
    assert [type(m).__name__ for m in fused.transition[3:]] == ["Identity", "Identity"]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in ours.modules()) > 2  # a copy fused
    x = (torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3)) * 2).double()
    spikes = []
    for model in (ours, fused):
        recorded = []
        for lif in (m for m in model.modules() if isinstance(m, LIF)):
            lif.register_spike_hook(lambda lif, s, multistep, recorded=recorded: recorded.append(s))
        with torch.no_grad():
            logits = model(x)
        spikes.append((logits, recorded))
    (logits, recorded), (fused_logits, fused_recorded) = spikes
    assert len(recorded) == len(fused_recorded) and logits.abs().max() > 0.01
    for k, (a, b) in enumerate(zip(recorded, fused_recorded)):
        assert_equal(b, a, f"spikes of neuron output {k}")
    assert_equal(fused_logits, logits, "logits")


def test_triton_and_torch_backends_spike_identically():
    torch.manual_seed(0)  # weights independent of the tests run before
    model = snnzoo.create_model("snasnet_fmnist", width=3, classifier_width=8).eval()
    with torch.no_grad():  # strong enough to spike through every layer
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(2.0)
                module.bias.fill_(0.3)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 3
    features = {backend: model.set_backend(backend).forward_features(x)
                for backend in ("triton", "torch", "auto")}
    assert 0.05 < features["torch"].mean() < 0.95
    assert_equal(features["triton"], features["torch"], "triton vs torch spikes")
    assert_equal(features["auto"], features["torch"], "auto vs torch spikes")


@pytest.mark.slow
def test_torch_compile_of_a_small_model():
    model = snnzoo.create_model("snasnet_fmnist", width=3, classifier_width=8, backend="triton",
                                timesteps=2)  # two steps: the interpreter runs each
    x = torch.randn(2, 1, 28, 28)
    model.eval()
    expected = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    assert_close(compiled(x), expected, 1e-6, 1e-6, "compiled logits")
    model.train()
    compiled(x).sum().backward()
    assert model.stem[0].weight.grad is not None


def test_jit_trace_and_export_equal_eager_and_leave_compiling_on(monkeypatch):
    # torch.jit.trace runs the model eagerly; the CPU paths' torch.compile must step aside for
    # it, not fail and switch itself off for the rest of the process.
    import warnings
    from snnzoo.kernels import _compiled
    monkeypatch.delenv("SNNZOO_COMPILE_CPU", raising=False)
    monkeypatch.setattr(_compiled, "_compile_failure", None)
    torch.manual_seed(0)
    model = excite(snnzoo.create_model("snasnet_fmnist", width=3, classifier_width=8)).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*deprecated", category=FutureWarning)
        traced = torch.jit.trace(model, x)
        exported = torch.export.export(model, (x,)).module()
    assert _compiled._compile_failure is None, _compiled._compile_failure
    with torch.no_grad():
        expected = model(x)
        assert expected.abs().max() > 0, "the test network should reach its output"
        assert_equal(traced(x), expected, "traced logits")
        assert_equal(exported(x), expected, "exported logits")
        other = torch.randn(7, 1, 28, 28)
        assert_equal(traced(other), model(other), "traced logits of another batch size")


# ---------------------------------------------------------------- genotypes


@pytest.mark.parametrize("text", ["0303 0030 2002 0200", "0303-0030-2002-0200",
                                  ["0303", "0030", "2002", "0200"],
                                  [[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]]])
def test_genotype_forms(text):
    genotype = parse_genotype(text)
    assert str(genotype) == "0303 0030 2002 0200"
    assert list(genotype.forward_edges) == [(0, 1, 3), (1, 2, 3), (0, 3, 3), (2, 3, 2)]
    assert list(genotype.feedback_edges) == [(2, 0, 2), (3, 1, 2)]


@pytest.mark.parametrize("text, cell, message", [
    ("0303 0030 2002", "backward", "4x4"),
    ("0303 0030 2002 02000", "backward", "4x4"),
    ("0305 0030 2002 0200", "backward", r"row 0, column 3\) = 5 is not an operation"),
    ("0303 0130 2002 0200", "backward", r"row 1, column 1\) = 1 is on the diagonal"),
    ("0303 0030 2002 0200", "forward", r"row 2, column 0\) = 2 is below the diagonal"),
    ("03a3 0030 2002 0200", "backward", "must be digits"),
    ("0303 0030 2002 0200", "sideways", "cell='sideways'"),
])
def test_malformed_genotypes(text, cell, message):
    with pytest.raises(ValueError, match=message):
        parse_genotype(text, cell)


@pytest.mark.parametrize("genotype, error, message", [
    (303, TypeError, "genotype 303 is of type int; give a string"),
    (b"0303 0030 2002 0200", TypeError, "is of type bytes"),
    ([303, 30, 2002, 200], TypeError, r"row 0 \(303\) is of type int"),
    ("\u00b2303 0030 2002 0200", ValueError, "must be digits 0-4"),  # str.isdigit() accepts it
    ("0505 0030 2002 0200", ValueError, r"row 0, column 1\) = 5 is not an operation"),
    ([[0, True, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]], ValueError,
     r"row 0, column 1\) = True is not an operation"),
    ([[0, 3.0, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]], ValueError,
     r"row 0, column 1\) = 3.0 is not an operation"),
])
def test_genotypes_of_the_wrong_type_are_clear_errors(genotype, error, message):
    with pytest.raises(error, match=message):
        parse_genotype(genotype)


def test_genotype_from_an_integer_tensor():
    matrix = torch.tensor([[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]])
    assert str(parse_genotype(matrix)) == "0303 0030 2002 0200"


@pytest.mark.parametrize("genotype", ["0000 0000 0000 0000", "0100 0000 0000 0000",
                                      "0300 0000 0003 0000"])
def test_unreachable_output_builds_with_a_warning(genotype):
    with pytest.warns(UserWarning, match=f"genotype '{genotype}': node 3 .* no path from node 0") \
            as warned:
        model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], genotype=genotype, width=2,
                               classifier_width=4))
    assert warned[0].filename == __file__, "the warning should point at the caller's line"
    assert model.genotype == genotype
    # reachable only through a feedback edge (2 -> 1 at the next step) is reachable
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse_genotype("0010 0001 0100 0000")


def test_timm_options_it_cannot_honour_are_clear_errors():
    with pytest.raises(RuntimeError, match=r"Invalid pretrained tag \(foo\) for snasnet_fmnist"):
        snnzoo.create_model("snasnet_fmnist.foo", **SMALL)
    with pytest.raises(ValueError, match="features_only=True is not supported; "
                                         "model.forward_features"):
        timm.create_model("snasnet_fmnist", features_only=True, **SMALL)
    model = snnzoo.create_model("snasnet_fmnist", **SMALL)
    with pytest.raises(NotImplementedError, match="does not checkpoint activations"):
        model.set_grad_checkpointing(True)
    model.set_grad_checkpointing(False)
    from timm.optim import param_groups_layer_decay
    groups = param_groups_layer_decay(model, weight_decay=0.0, layer_decay=0.5)
    grouped = {id(p) for group in groups for p in group["params"]}
    assert grouped == {id(p) for p in model.parameters()}, "every parameter in a group"
    scales = sorted({group["lr_scale"] for group in groups})
    assert len(scales) == 6, scales  # stem, 4 blocks, head


def test_a_timesteps_overlay_is_the_models():
    model = snnzoo.create_model("snasnet_fmnist", **SMALL, pretrained_cfg_overlay=dict(timesteps=3))
    assert model.timesteps == model.pretrained_cfg["timesteps"] == 3


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_images_are_refused(bad):
    # They gave all-zero logits without a word (a NaN membrane never crosses the threshold).
    model = snnzoo.create_model("snasnet_fmnist", width=4, classifier_width=16).eval()
    images = torch.randn(3, 1, 28, 28)
    images[2, 0, 4, 9] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(the first at index \[2, 0, 4, 9\]"):
        model(images)
    with pytest.raises(ValueError, match="NaN or infinite"):
        model(images.unsqueeze(0).expand(2, -1, -1, -1, -1))  # a [T, B, C, H, W] sequence too
    model.check_finite = False
    assert model(images).shape == (3, 10)
