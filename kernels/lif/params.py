"""What every path of the LIF neuron shares: the validated neuron constants (``LIFParams``,
the surrogate ids and their default sharpness), the check of a time-major input, and the rule
that decides what the forward saves for the backward."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

SURROGATES = {"atan": 0, "sigmoid": 1}
DEFAULT_ALPHA = {"atan": 2.0, "sigmoid": 4.0}

# Up to this many steps the backward recomputes h from x in registers, so that the forward
# saves nothing new (x is kept by reference); longer sequences save h in fp32 instead.
MAX_RECOMPUTE_STEPS = 32


def _real_or_none(name: str, value) -> Optional[float]:
    """A neuron constant as a float (Python, NumPy or 0-d tensor numbers); None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}={value!r} must be a real number, not text")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}={value!r} must be a real number") from None


class LIFParams:
    """Validated neuron constants, shared by the module, the functional API and the ops."""

    __slots__ = ("tau", "v_threshold", "v_reset", "surrogate", "alpha", "detach_reset", "decay_input")

    def __init__(self, tau=4.0 / 3.0, v_threshold=1.0, v_reset=0.0, surrogate="atan", alpha=None,
                 detach_reset=True, decay_input=True):
        tau, v_threshold, v_reset, alpha = (_real_or_none(name, value) for name, value in (
            ("tau", tau), ("v_threshold", v_threshold), ("v_reset", v_reset), ("alpha", alpha)))
        if tau is None or not math.isfinite(tau) or tau <= 1.0:
            raise ValueError(
                f"tau={tau!r} is invalid: the membrane time constant must be a finite number > 1 "
                f"(SpikingJelly refuses tau <= 1 too); SNASNet uses tau=4/3")
        if surrogate not in SURROGATES:
            raise ValueError(
                f"surrogate={surrogate!r} is unknown; choose one of {sorted(SURROGATES)}")
        alpha = DEFAULT_ALPHA[surrogate] if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha={alpha!r} is invalid: the surrogate sharpness must be > 0")
        if v_threshold is None or not math.isfinite(v_threshold):
            raise ValueError(f"v_threshold={v_threshold!r} must be a finite number")
        if v_reset is not None and not math.isfinite(v_reset):
            raise ValueError(f"v_reset={v_reset!r} must be a finite number, or None for a soft reset")
        for name, value in (("tau", tau), ("v_threshold", v_threshold), ("v_reset", v_reset),
                            ("surrogate", surrogate), ("alpha", alpha),
                            ("detach_reset", bool(detach_reset)),
                            ("decay_input", bool(decay_input))):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"LIFParams are immutable ({name}={value!r}): set it on the LIF "
                             f"module (lif.{name} = ...), which checks it, or build new ones "
                             f"with params.replace({name}=...)")

    def replace(self, **changes) -> "LIFParams":
        """New, checked params with `changes`; a new surrogate brings its own default alpha
        unless alpha was set to another value or is changed too."""
        values = {name: getattr(self, name) for name in self.__slots__}
        if "surrogate" in changes and "alpha" not in changes \
                and self.alpha == DEFAULT_ALPHA[self.surrogate]:
            values["alpha"] = None
        return LIFParams(**{**values, **changes})

    def __eq__(self, other):
        return isinstance(other, LIFParams) and self.as_op_args() == other.as_op_args()

    def __hash__(self):
        return hash(self.as_op_args())

    def __reduce__(self):  # pickling, deepcopy: through __init__, which checks
        return (LIFParams, tuple(getattr(self, name) for name in self.__slots__))

    def as_op_args(self):
        return (self.tau, self.v_threshold, self.v_reset, self.decay_input,
                SURROGATES[self.surrogate], self.alpha, self.detach_reset)

    def __repr__(self):
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)


def _saves_h(n_steps: int, needs_grad: bool) -> bool:
    return needs_grad and n_steps > MAX_RECOMPUTE_STEPS


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,), dtype=torch.float32)


def _check_time_major(x, allow_float64=False):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"multi-step LIF expects a time-major input [T, ...] with at least 2 dimensions, got "
            f"shape {tuple(x.shape)}; add the time dimension (x.unsqueeze(0) for one step) or "
            f"use LIF.step for single-step input")
    if x.shape[0] == 0:
        raise ValueError(f"multi-step LIF got a sequence of 0 timesteps (shape {tuple(x.shape)}); "
                         f"the first dimension is time, T >= 1")
    supported = (torch.float32, torch.float16, torch.bfloat16) + ((torch.float64,) if allow_float64 else ())
    if x.dtype not in supported:
        raise ValueError(f"LIF input dtype {x.dtype} is unsupported; use float32, float16 or "
                         f"bfloat16 (float64 only with backend='torch', the reference: "
                         f"LIF(backend='torch'), or model.set_backend('torch') for a model)")
