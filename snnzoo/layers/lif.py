"""The LIF neuron as a module: multi-step calls for whole sequences, ``step`` for recurrences."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional

from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from snnzoo.kernels.lif import BACKENDS, LIFParams, lif_multistep, lif_step

__all__ = ["LIF"]


class LIF(nn.Module):
    """Leaky integrate-and-fire neuron, SpikingJelly ``LIFNode`` semantics.

    ``lif(x_seq)`` maps [T, ...] input current to [T, ...] spikes, starting from rest on every
    call. ``lif.step(x_t)`` advances a stored membrane by one step (for recurrent cells);
    ``lif.reset()`` returns it to rest.

    backend: "auto" (Triton for CUDA tensors, the torch implementation of the same kernels on
    the CPU), "triton" (the fused kernels everywhere; on the CPU only under
    TRITON_INTERPRET=1), or "torch" (the per-timestep autograd reference).
    """

    def __init__(self, tau: float = 4.0 / 3.0, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, surrogate: str = "atan",
                 alpha: Optional[float] = None, detach_reset: bool = True,
                 decay_input: bool = True, backend: str = "auto"):
        super().__init__()
        self.params = LIFParams(tau, v_threshold, v_reset, surrogate, alpha, detach_reset,
                                decay_input)
        self.backend = backend
        self.v: Optional[Tensor] = None
        self._spike_hooks: OrderedDict[int, Callable[["LIF", Tensor, bool], None]] = OrderedDict()

    def _param(name: str, doc: str):  # a neuron constant, read from and checked into params
        def get(self):
            return getattr(self.params, name)

        def set(self, value):
            self.params = self.params.replace(**{name: value})
        return property(get, set, doc=doc)

    tau = _param("tau", "membrane time constant (> 1)")
    v_threshold = _param("v_threshold", "firing threshold")
    v_reset = _param("v_reset", "membrane after a spike; None: soft reset (subtract the threshold)")
    surrogate = _param("surrogate", 'surrogate gradient: "atan" or "sigmoid"')
    alpha = _param("alpha", "surrogate sharpness")
    detach_reset = _param("detach_reset", "treat the spike in the reset as a constant")
    decay_input = _param("decay_input", "the input decays with the membrane (SpikingJelly's)")
    del _param

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str):
        if value not in BACKENDS:
            raise ValueError(f"backend={value!r} is unknown; choose one of {list(BACKENDS)}")
        self._backend = value

    def forward(self, x_seq: Tensor) -> Tensor:
        spikes = lif_multistep(x_seq, self.params, self.backend)
        self._run_spike_hooks(spikes, True)
        return spikes

    def step(self, x: Tensor) -> Tensor:
        spikes, self.v = lif_step(x, self.v, self.params, self.backend)
        self._run_spike_hooks(spikes, False)
        return spikes

    @property
    def sharing_key(self) -> tuple:
        """Neurons with equal keys fed the same input since rest fire alike, and their
        surrogate gradients agree: one of them may compute for all (see adopt)."""
        return (*self.params.as_op_args(), self.backend)

    def adopt(self, leader: "LIF", spikes: Tensor, multistep: bool) -> Tensor:
        """Take the spikes that leader just computed, as this neuron would have computed them:
        leader has this neuron's sharing_key and has been fed the same input since both were
        at rest. Shares leader's membrane tensor (steps replace it, never write into it) and
        runs this neuron's spike hooks. A backward cell whose node feeds several neurons fires
        them once this way (SNASCell)."""
        if leader.sharing_key != self.sharing_key:
            raise ValueError(f"cannot adopt the spikes of a different neuron: {leader!r} vs "
                             f"{self!r}")
        self.v = leader.v
        self._run_spike_hooks(spikes, multistep)
        return spikes

    def _run_spike_hooks(self, spikes: Tensor, multistep: bool) -> None:
        for hook in self._spike_hooks.values():
            hook(self, spikes, multistep)

    def register_spike_hook(self, hook: Callable[["LIF", Tensor, bool], None]) -> RemovableHandle:
        """hook(lif, spikes, multistep) runs on every output: spikes [T, ...] from a multi-step
        call (multistep=True) or [...] from one step. Returns a handle with .remove(). Hooks
        must not write into spikes: the layers after the neuron read them, and neurons that
        share a node in a cell share one spikes tensor (see adopt)."""
        handle = RemovableHandle(self._spike_hooks)
        self._spike_hooks[handle.id] = hook
        return handle

    def reset(self) -> None:
        self.v = None

    def extra_repr(self) -> str:
        return f"{self.params!r}, backend={self.backend!r}"
