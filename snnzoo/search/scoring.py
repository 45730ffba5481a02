"""The training-free score of an untrained network: how differently it spikes for different
images (the sparsity-aware Hamming kernel of Kim et al., score = log|det K|)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from snnzoo.kernels.spike_kernel import HammingKernelScorer
from snnzoo.layers import LIF
from snnzoo.models.cells import spikes_only

__all__ = ["score", "authors_score"]


@torch.no_grad()
def score(model: nn.Module, images: Tensor, backend: str = "auto") -> float:
    """log|det(K / L)| where K sums, over every LIF output at every timestep (L of them), the
    B x B kernel N - 0.5 H / (q + 1e-3) of the batch's N-neuron spike rows (H: Hamming
    distances, q: the distance expected of rows with their firing rates, N times their rate
    mismatch; see snnzoo.kernels.spike_kernel). The model stays in the mode it was given (the search
    scores in train mode, as the authors did), its buffers as they were: a train-mode pass
    would update BatchNorm's running statistics, which the score does not use (so the cells
    skip what only those would see, snnzoo.models.cells.spikes_only). -inf, with a warning,
    for a singular kernel."""
    if not isinstance(images, Tensor) or not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, normalised as the model "
                         f"expects; got {getattr(images, 'dtype', type(images).__name__)} (for "
                         f"uint8 images use snnzoo.data.transform_batch, or load_dataset's images)")
    batch = images.shape[1] if images.dim() == 5 else images.shape[0] if images.dim() else 0
    if batch < 2:
        raise ValueError(f"images of shape {tuple(images.shape)} hold {batch} image(s); the score "
                         f"compares the images of a batch with each other, so give at least 2 "
                         f"(the search uses --batch-size, 256 by default)")
    scorer = HammingKernelScorer(backend)
    handles = [module.register_spike_hook(scorer.spike_hook) for module in model.modules()
               if isinstance(module, LIF)]
    if not handles:
        raise ValueError(f"{type(model).__name__} has no snnzoo LIF neurons to score")
    saved = [(buffer, buffer.clone()) for buffer in model.buffers()]
    try:
        with spikes_only(model):
            _forward_with_hooks(model, images, handles)
    finally:
        for buffer, value in saved:
            if not torch.equal(buffer, value):  # eval mode moves none (inference tensors stay)
                buffer.copy_(value)
    return scorer.score()


def _forward_with_hooks(model: nn.Module, images: Tensor, handles):
    """One forward pass of images, then the hooks removed, also when it fails."""
    try:
        model(images)
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def authors_score(model: nn.Module, images: Tensor) -> float:
    """The authors' procedure, for tests and benchmarks: a forward hook on every LIF call (one
    timestep each, as in their per-timestep network, e.g. snnzoo.models.reference), the
    layer's kernel in float32 on the device, copied to a float64 numpy K at every call."""
    import numpy as np

    from snnzoo.kernels.spike_kernel import hamming_kernel_reference

    state = dict(kernel=np.zeros((images.shape[0], images.shape[0])), calls=0)

    def accumulate(module, inputs, output):
        if output.shape[0] != images.shape[0]:
            raise ValueError(f"authors_score takes per-timestep neurons, whose outputs are "
                             f"[B, ...] as in the authors' network; {type(module).__name__} "
                             f"returned {tuple(output.shape)} for {images.shape[0]} images. "
                             f"Score snnzoo models with snnzoo.search.score")
        state["kernel"] = state["kernel"] + hamming_kernel_reference(output).cpu().numpy()
        state["calls"] += 1

    _forward_with_hooks(model, images, [module.register_forward_hook(accumulate)
                                        for module in model.modules() if isinstance(module, LIF)])
    return float(np.linalg.slogdet(state["kernel"] / state["calls"])[1])
