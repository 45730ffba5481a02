"""snnzoo's search score against a transcription of the authors' scoring code.

The transcription below is written from the authors' repository alone
(Intelligent-Computing-Lab-Yale/Neural-Architecture-Search-for-Spiking-Neural-Networks,
``model_snn.py``, ``find_best_neuroncell``): it imports nothing of snnzoo's scorer, so it
cannot share a misreading with the kernel. It runs as their forward hook on every LIF call
of the per-timestep network (snnzoo.models.reference, one call per timestep as theirs), adds
float32 terms into a float64 numpy K, and takes slogdet of K / calls.

The networks run in float64 so that both produce the same spikes to the last bit; the
kernel's terms are float32 on both sides (the authors threshold into float32). Scores must
agree to 1e-6 absolute: only the order in which float64 K sums the terms differs (snnzoo
adds a layer's T steps together, the authors add layer after layer per timestep).
"""

import math

import numpy as np
import pytest
import torch

from snnzoo.convert import convert_state_dict
from snnzoo.data import first_batch, load_dataset
from snnzoo.layers import LIF
from snnzoo.models.reference import AuthorsSNASNet, excite
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet
from snnzoo.search import score


class AuthorsKernelHook:
    """model_snn.py, lines 52-85, transcribed: K and num_actfun on the side, one hook call
    per LIF output, log|det(K / num_actfun)| as their logdet (lines 9-11)."""

    def __init__(self, search_batchsize: int):
        self.search_batchsize = search_batchsize
        self.K = np.zeros((search_batchsize, search_batchsize))  # line 52
        self.num_actfun = 0  # line 53

    def __call__(self, module, inp, out):  # computing_K_eachtime, lines 55-71
        if isinstance(out, tuple):
            out = out[0]
        out = out.view(out.size(0), -1)
        batch_num, neuron_num = out.size()
        x = (out > 0).float()
        full_matrix = torch.ones((self.search_batchsize, self.search_batchsize)) * neuron_num
        sparsity = (x.sum(1) / neuron_num).unsqueeze(1)
        norm_K = ((sparsity @ (1 - sparsity.t())) + ((1 - sparsity) @ sparsity.t())) * neuron_num
        rescale_factor = torch.div(
            0.5 * torch.ones((self.search_batchsize, self.search_batchsize)), norm_K + 1e-3)
        K1_0 = (x @ (1 - x.t()))
        K0_1 = ((1 - x) @ x.t())
        K_total = (full_matrix - rescale_factor * (K0_1 + K1_0))
        self.K = self.K + (K_total.cpu().numpy())
        self.num_actfun += 1

    def logdet(self) -> float:  # lines 9-11 and 85
        s, ld = np.linalg.slogdet(self.K / (self.num_actfun))
        return float(ld)


def authors_transcribed_score(network, images) -> float:
    hook = AuthorsKernelHook(images.shape[0])
    handles = [module.register_forward_hook(hook) for module in network.modules()
               if isinstance(module, LIF)]  # their neuron_type 'LIFNode' test, lines 74-76
    try:
        with torch.no_grad():
            network(images)
    finally:
        for handle in handles:
            handle.remove()
    return hook.logdet()


def _twin_networks(genotype, cell, mode, width=8):
    """The authors' network and snnzoo's with the same weights, in float64, dropout off."""
    args = dict(MODEL_ARGS["snasnet_fmnist"], genotype=genotype, cell=cell, width=width,
                classifier_width=64, drop_rate=0.0)
    torch.manual_seed(0)
    reference = AuthorsSNASNet(**args)
    if mode == "eval":  # the authors' init is silent in eval mode: make every layer spike
        excite(reference)
    ours = SNASNet(**args)
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                            ours.state_dict().keys()))
    reference, ours = reference.double(), ours.double().set_backend("torch")
    reference.train(mode == "train")
    ours.train(mode == "train")
    return reference, ours


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("genotype, cell", [("0302 0030 3003 0000", "backward"),
                                            ("0314 0023 0004 0000", "forward")])
def test_score_is_the_authors(genotype, cell, mode, backend):
    images, _ = first_batch(load_dataset("fashion-mnist-sample", "train"), 32, seed=0)
    reference, ours = _twin_networks(genotype, cell, mode)
    expected = authors_transcribed_score(reference, images.double())
    value = score(ours, images.double(), backend=backend)
    assert math.isfinite(expected)
    assert abs(value - expected) <= 1e-6, f"snnzoo {value!r} vs the authors' {expected!r}"


def test_score_is_not_the_formula_without_n():
    # The same networks scored with N left out of the rescale (the formula snnzoo used
    # before): the transcription must tell the two apart, or the test above proves nothing.
    images, _ = first_batch(load_dataset("fashion-mnist-sample", "train"), 32, seed=0)
    reference, _ = _twin_networks("0302 0030 3003 0000", "backward", "train")
    expected = authors_transcribed_score(reference, images.double())
    hook = AuthorsKernelHook(32)

    def without_n(module, inp, out):
        x = (out.reshape(out.shape[0], -1) > 0).float()
        neuron_num = x.shape[1]
        sparsity = (x.sum(1) / neuron_num).unsqueeze(1)
        norm_K = (sparsity @ (1 - sparsity.t())) + ((1 - sparsity) @ sparsity.t())
        distance = x @ (1 - x.t()) + (1 - x) @ x.t()
        hook.K = hook.K + (neuron_num - 0.5 / (norm_K + 1e-3) * distance).numpy()
        hook.num_actfun += 1

    handles = [m.register_forward_hook(without_n) for m in reference.modules()
               if isinstance(m, LIF)]
    with torch.no_grad():
        reference(images.double())
    for handle in handles:
        handle.remove()
    assert abs(hook.logdet() - expected) > 1.0


@pytest.mark.slow
def test_carry_state_repeats_the_authors_loop():
    # model_snn.py lines 73-87: hooks registered once, then for each of the repeat batches K and
    # num_actfun are zeroed and the network is called again, never reset (no reset_net): the
    # second batch starts from the membranes (and the dropout mask) the first one left.
    import argparse

    from snnzoo.convert import authors_network
    from snnzoo.search import run

    dataset = load_dataset("fashion-mnist-sample", "train", augment=True)
    model_args = dict(MODEL_ARGS["snasnet_fmnist"], width=6, classifier_width=32)
    del model_args["genotype"]
    args = argparse.Namespace(seed=5, repeat=2, batch_size=16, channels_last=False,
                              carry_state=True, precision="fp32")
    candidate = run.Candidate(3, "0302 0030 3003 0000")
    carried = run.score_candidate(candidate, model_args, dataset, args, torch.device("cpu"))

    seed = 5 * run.SEED_MULTIPLIER + 3
    torch.manual_seed(seed)
    searchnet = authors_network(SNASNet(genotype=candidate.genotype, **model_args).train())
    searchnet.rest_on_call = False
    hook = AuthorsKernelHook(16)
    for module in searchnet.modules():
        if isinstance(module, LIF):
            module.register_forward_hook(hook)
    s = []
    with torch.no_grad():
        for j in range(2):
            hook.K, hook.num_actfun = np.zeros((16, 16)), 0
            inputs, _ = first_batch(dataset, 16, seed=seed * 16 + j)
            torch.manual_seed(seed * 16 + j)
            searchnet(inputs)
            s.append(hook.logdet())
    assert carried["repeats"] == pytest.approx(s, abs=1e-6)

    args.carry_state = False
    from_rest = run.score_candidate(candidate, model_args, dataset, args, torch.device("cpu"))
    assert from_rest["repeats"][0] == pytest.approx(s[0], abs=1e-6), "the first batch starts at rest"
    assert abs(from_rest["repeats"][1] - s[1]) > 1e-3, "the second does not, with --carry-state"


def test_the_authors_network_keeps_its_dropout_mask_and_membranes_across_calls():
    # SpikingJelly's clock_driven layer.Dropout draws its mask when it has none and keeps it
    # until reset() (reset_net), as LIFNode keeps v; the authors' search never resets, so a
    # second call reuses both. rest_on_call=True (every other use) starts each call anew.
    from snnzoo.models.reference import AuthorsSNASNet
    args = dict(MODEL_ARGS["snasnet_fmnist"], width=4, classifier_width=16)
    torch.manual_seed(0)
    network = AuthorsSNASNet(**args).train()
    network.rest_on_call = False
    images = torch.randn(6, 1, 28, 28)
    with torch.no_grad():
        network(images)
        mask = network.classifier[0].mask
        membranes = [m.v for m in network.modules() if isinstance(m, LIF)]
        network._rest()  # what a call does first: the cells' feedback only
        assert [m.v for m in network.modules() if isinstance(m, LIF)] == membranes
        assert all(v is not None for v in membranes)
        network(images)
    assert network.classifier[0].mask is mask
    network.rest_on_call = True
    with torch.no_grad():
        network(images)
    assert network.classifier[0].mask is not mask
