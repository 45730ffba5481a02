"""Building blocks of SNASNet that run on time-major sequences [T, B, C, H, W].

Stateless layers fold time into the batch. BatchNorm normalises each timestep with its own
batch statistics in training (as the authors' per-timestep network does, running statistics
updated once per step) and all steps at once in eval. Cells with temporal feedback run step
by step; everything else runs all T steps in one call on CUDA, where the fused LIF kernel
pays, and one step at a time through a chain of layers on the CPU, where a step's tensors then
stay in cache (SeqSequential).
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from snnzoo.kernels import avg_pool2d
from snnzoo.kernels.spike_conv import spike_conv2d
from snnzoo.layers import LIF

from .genotype import NUM_NODES, Genotype

__all__ = ["ConvBNSequential", "SeqSequential", "SeqConv2d", "SeqBatchNorm2d", "SeqAvgPool2d",
           "SharedDropout", "SpikingConv", "SpikingConvBN", "SNASCell", "conv_output_size",
           "fold_avg_pool",
           "fuse_conv_bn", "make_edge", "pool_folds_into", "spikes_only"]


@contextlib.contextmanager
def spikes_only(model: nn.Module) -> Iterator[None]:
    """Within it, the cells of model in train mode skip their last step's feedback
    convolutions and BatchNorms, as eval mode does: what they compute reaches no later step,
    so no spike depends on it, and in train mode only those BatchNorms' running statistics
    would (they then see T - 1 updates instead of T). For callers that look at spikes alone
    and restore the statistics (snnzoo.search.score). Other models are not affected."""
    cells = [module for module in model.modules() if isinstance(module, SNASCell)]
    previous = [cell.spikes_only for cell in cells]
    for cell in cells:
        cell.spikes_only = True
    try:
        yield
    finally:
        for cell, value in zip(cells, previous):
            cell.spikes_only = value


def _fold_time(module_forward, x: Tensor) -> Tensor:
    """A stateless layer on [T, B, ...] as one call on [T*B, ...] (a view in any dense layout,
    channels-last included); on a static input repeated over T (stride 0), one call on it."""
    if x.dim() != 5:
        return module_forward(x)
    steps, batch = x.shape[:2]
    if x.stride(0) == 0:
        out = module_forward(x[0])
        return out.unsqueeze(0).expand(steps, *out.shape)
    out = module_forward(x.flatten(0, 1))
    return out.view(steps, batch, *out.shape[1:])


class SeqConv2d(nn.Conv2d):
    """nn.Conv2d on sequences. With spike_limbs (SNASNet.set_precision("bf16x3") sets it on
    the convolutions whose input is spikes), a call that autograd does not record convolves
    by snnzoo.kernels.spike_conv: float32 results from three bfloat16 weight limbs (Triton on
    CUDA); one that it records (training) stays torch's float32 convolution."""

    spike_limbs = False

    def forward(self, x: Tensor) -> Tensor:
        if self.spike_limbs and not (torch.is_grad_enabled()
                                     and (x.requires_grad or self.weight.requires_grad)):
            return spike_conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return _fold_time(super().forward, x)


class SeqAvgPool2d(nn.AvgPool2d):
    """nn.AvgPool2d on sequences; on float32 CPU tensors through snnzoo.kernels.avg_pool2d
    (the same floats, compiled)."""

    def forward(self, x: Tensor) -> Tensor:
        return _fold_time(self._pool, x)

    def _pool(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class _BatchNormPerStep(torch.autograd.Function):
    """Training-mode BatchNorm of [T, B, C, H, W] with each step's own batch statistics and T
    running-statistics updates, exactly T calls of BatchNorm2d (the same ATen kernels), but
    written in place into one output in the input's layout instead of T outputs stacked."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, factors, eps):
        out = torch.empty_like(x)
        mean = x.new_empty((x.shape[0], x.shape[2]))
        invstd = torch.empty_like(mean)
        for t, factor in enumerate(factors):
            torch.ops.aten.native_batch_norm.out(
                x[t], weight, bias, running_mean, running_var, True, factor, eps,
                out=out[t], save_mean=mean[t], save_invstd=invstd[t])
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        needs = list(ctx.needs_input_grad[:3])
        grad_x = torch.empty_like(x) if needs[0] else None
        grad_weight = grad_bias = None
        for t in range(x.shape[0]):
            grad_x_t, grad_weight_t, grad_bias_t = torch.ops.aten.native_batch_norm_backward(
                grad_out[t], x[t], weight, None, None, mean[t], invstd[t], True, ctx.eps, needs)
            if needs[0]:
                grad_x[t].copy_(grad_x_t)
            if needs[1]:
                grad_weight = grad_weight_t if grad_weight is None else grad_weight + grad_weight_t
            if needs[2]:
                grad_bias = grad_bias_t if grad_bias is None else grad_bias + grad_bias_t
        return grad_x, grad_weight, grad_bias, None, None, None, None


class SeqBatchNorm2d(nn.BatchNorm2d):
    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5 and self.training and self._per_step_in_place(x):
            return _BatchNormPerStep.apply(x, self.weight, self.bias, self.running_mean,
                                           self.running_var, self._step_factors(x.shape[0]),
                                           self.eps)
        if x.dim() == 5 and self.training:
            return torch.stack([super(SeqBatchNorm2d, self).forward(x_t) for x_t in x])
        return _fold_time(super().forward, x)

    def _per_step_in_place(self, x: Tensor) -> bool:
        """Whether _BatchNormPerStep applies: in eager mode (torch.compile fuses the stacked
        steps itself and cannot functionalise the out= writes), on the CPU (where its
        in-place writes were measured to pay; CUDA keeps cuDNN's kernels), running statistics
        and affine on, in float32 or float64 like the parameters (saved statistics then have
        x's dtype), and each step dense in NCHW or NHWC (the out= kernel miscomputes others)."""
        return (x.device.type == "cpu" and not torch.compiler.is_compiling()
                and self.track_running_stats and self.affine
                and x.dtype in (torch.float32, torch.float64) and self.weight.dtype == x.dtype
                and (x[0].is_contiguous() or x[0].is_contiguous(memory_format=torch.channels_last)))

    def _step_factors(self, steps: int) -> list:
        """The running-average factor of each of T BatchNorm2d calls (and their count)."""
        factors = []
        for _ in range(steps):
            self.num_batches_tracked.add_(1)
            factors.append(self.momentum if self.momentum is not None
                           else 1.0 / float(self.num_batches_tracked))
        return factors


class SharedDropout(nn.Module):
    """Dropout whose mask is drawn once per forward and shared by all T steps of [T, B, ...]
    (SpikingJelly's ``layer.Dropout``, drawn the same way from the same RNG)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout p={p!r} must be in [0, 1)")
        self.p = p

    def forward(self, x_seq: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x_seq
        mask = F.dropout(torch.ones_like(x_seq[0]), self.p, training=True)
        return x_seq * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _SpikingEdge(nn.Module):
    """An edge that fires its neuron (self.lif) on the node's input, then from_spikes."""

    def forward(self, x_seq: Tensor) -> Tensor:
        return self.from_spikes(self.lif(x_seq))

    def step(self, x: Tensor) -> Tensor:
        return self.from_spikes(self.lif.step(x))

    def reset(self) -> None:
        self.lif.reset()


class SpikingConvBN(_SpikingEdge):
    """Operations 2 and 3: LIF -> conv (1x1 or 3x3, stride 1, no bias) -> BatchNorm."""

    def __init__(self, channels: int, kernel_size: int, neuron: dict):
        super().__init__()
        self.lif = LIF(**neuron)
        self.conv = SeqConv2d(channels, channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = SeqBatchNorm2d(channels)

    def from_spikes(self, spikes: Tensor) -> Tensor:
        """conv -> BatchNorm of spikes this edge's neuron fired (or adopted)."""
        return self.bn(self.conv(spikes))

    def fuse(self) -> "SpikingConv":
        """This edge for inference, its BatchNorm folded into the convolution (timm's
        reparameterize_model calls this; see fuse_conv_bn)."""
        return SpikingConv(self.lif, fuse_conv_bn(self.conv, self.bn))


class _InferenceOnly:
    """A fused layer (BatchNorm folded in with its running statistics): for inference only.
    Train mode is refused, and so is saving (snnzoo.hub.save_pretrained checks
    inference_only), because the weights no longer have the architecture's layout."""

    inference_only = True

    def train(self, mode: bool = True):
        if mode:
            raise ValueError(
                f"{type(self).__name__} is a fused layer for inference (its BatchNorm is folded "
                f"into the convolution with the running statistics); train the model before "
                f"fusing it, and fuse a copy (timm.utils.reparameterize_model does)")
        return super().train(False)


class SpikingConv(_InferenceOnly, _SpikingEdge):
    """LIF -> conv with a bias: a SpikingConvBN fused for inference."""

    def __init__(self, lif: LIF, conv: nn.Conv2d):
        super().__init__()
        self.lif, self.conv = lif, conv
        self.train(False)

    def from_spikes(self, spikes: Tensor) -> Tensor:
        return self.conv(spikes)


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d,
                 pool: Optional[nn.AvgPool2d] = None) -> SeqConv2d:
    """conv -> bn in eval mode as one convolution: weight w s and bias (c - mean) s + beta per
    output channel, s = gamma / sqrt(var + eps) and c conv's own bias (or 0), computed in
    float64 on the CPU and stored in conv's dtype, device and memory layout. Equal to conv ->
    bn up to float rounding (in float32 a membrane within rounding of the threshold may fire
    differently). Draws no random numbers.

    With pool (an average pool that pool_folds_into(conv) accepts), conv -> bn -> pool as one
    convolution of pool's stride: see fold_avg_pool."""
    if bn.training or bn.running_mean is None:
        raise ValueError(
            f"folding {bn} into a convolution uses its running statistics, which only eval mode "
            f"uses: call model.eval() first (timm.utils.reparameterize_model(model.eval())), "
            f"and keep track_running_stats=True")
    scale = torch.rsqrt(_exact(bn.running_var) + bn.eps)
    if bn.weight is not None:
        scale = scale * _exact(bn.weight)
    bias = -_exact(bn.running_mean) * scale
    if conv.bias is not None:
        bias = bias + _exact(conv.bias) * scale
    if bn.bias is not None:
        bias = bias + _exact(bn.bias)
    weight = _exact(conv.weight) * scale.view(-1, 1, 1, 1)
    if pool is not None:
        return fold_avg_pool(conv, pool, weight, bias)
    return _conv_like(conv, weight, bias)


def conv_output_size(conv: nn.Conv2d, size: tuple) -> tuple:
    """(height, width) of conv's output for an input of size (height, width), padding given
    in pixels or as "same" (stride 1) or "valid"."""
    if isinstance(conv.padding, str):
        padding = [(k - 1) * d // 2 if conv.padding == "same" else 0
                   for k, d in zip(conv.kernel_size, conv.dilation)]
    else:
        padding = conv.padding
    return tuple((side + 2 * p - d * (k - 1) - 1) // s + 1 for side, p, d, k, s in
                 zip(size, padding, conv.dilation, conv.kernel_size, conv.stride))


def pool_folds_into(conv: nn.Module, pool: nn.Module) -> bool:
    """Whether conv -> pool is one convolution: pool averages non-overlapping windows
    (kernel = stride, no padding, floor mode, no divisor override) and conv has stride 1,
    dilation 1 and zero padding."""
    return (isinstance(conv, nn.Conv2d) and type(pool) in (nn.AvgPool2d, SeqAvgPool2d)
            and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str)
            and _pair(pool.kernel_size) == _pair(pool.stride if pool.stride else pool.kernel_size)
            and _pair(pool.padding) == (0, 0) and not pool.ceil_mode
            and pool.divisor_override is None)


def fold_avg_pool(conv: nn.Conv2d, pool: nn.AvgPool2d, weight: Optional[Tensor] = None,
                  bias: Optional[Tensor] = None) -> SeqConv2d:
    """conv (stride 1, kernel k, padding P) -> average pool p x p of stride p as one
    convolution of kernel k + p - 1, stride p and padding P whose weight is the sum of the p*p
    shifts of conv's weight over p*p (an output averages the p x p conv outputs of its window,
    each a weighted sum of its shifted input window). It computes 1/p^2 of conv's outputs with
    (k + p - 1)^2 / k^2 times the products each: for 3x3 and p = 2, 4/9 of the products.
    Equal to conv -> pool up to float rounding; the same output size (floor(H'/p) both).
    weight and bias (float64) default to conv's own; the result has conv's dtype, device and
    layout. In eval mode a BatchNorm between them is an affine map per channel, which
    commutes with the average: fuse_conv_bn(conv, bn, pool) folds all three."""
    if not pool_folds_into(conv, pool):
        raise ValueError(f"{pool} after {conv} is not one convolution: it takes an average pool "
                         f"with kernel = stride and no padding after a convolution of stride 1")
    weight = _exact(conv.weight) if weight is None else weight
    if bias is None and conv.bias is not None:
        bias = _exact(conv.bias)
    (kh, kw), (ph, pw) = conv.kernel_size, _pair(pool.kernel_size)
    pooled = weight.new_zeros(*weight.shape[:2], kh + ph - 1, kw + pw - 1)
    for a in range(ph):
        for b in range(pw):
            pooled[:, :, a:a + kh, b:b + kw] += weight
    return _conv_like(conv, pooled / (ph * pw), bias, stride=(ph, pw))


def _exact(tensor: Tensor) -> Tensor:
    return tensor.detach().to("cpu", torch.float64)


def _conv_like(conv: nn.Conv2d, weight: Tensor, bias: Optional[Tensor],
               stride: Optional[tuple] = None) -> SeqConv2d:
    """A SeqConv2d with conv's channels, padding and groups, the given float64 weight (its
    kernel size taken from it) and bias, stored in conv's dtype, device and memory layout, in
    eval mode; built on the meta device, so that no random numbers are drawn."""
    fused = SeqConv2d(conv.in_channels, conv.out_channels, tuple(weight.shape[2:]),
                      stride or conv.stride, conv.padding, conv.dilation, conv.groups,
                      bias=bias is not None, padding_mode=conv.padding_mode, device="meta")
    fused.spike_limbs = getattr(conv, "spike_limbs", False)
    like = conv.weight
    if weight.shape == like.shape:
        stored = torch.empty_like(like)  # conv's strides exactly
    else:
        channels_last = not like.is_contiguous() and like.is_contiguous(
            memory_format=torch.channels_last)
        stored = torch.empty(weight.shape, dtype=like.dtype, device=like.device).contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    with torch.no_grad():
        stored.copy_(weight)
    requires_grad = like.requires_grad
    fused.weight = nn.Parameter(stored, requires_grad=requires_grad)
    if bias is not None:
        fused.bias = nn.Parameter(bias.to(like.device, like.dtype), requires_grad=requires_grad)
    return fused.train(False)


def _by_step(by_step: Optional[bool], x: Tensor) -> bool:
    """Whether layers run a sequence one timestep at a time: as set (by_step), else on the CPU.

    On the CPU a step's intermediate tensors then stay in cache instead of each layer
    streaming all T steps through memory (benchmarks/by_step.py, one thread of this project's
    CPU: 7-26% less time per search candidate at 64 channels, 32x32, batch 32; no difference
    for the models at batch 8); elsewhere each layer runs all T steps at once (one fused LIF
    launch, larger kernels). The computation is the same either way (see SeqSequential)."""
    return x.device.type == "cpu" if by_step is None else by_step


class SeqSequential(nn.Sequential):
    """nn.Sequential of layers on [T, B, ...] sequences: LIFs, and stateless layers that fold
    time into the batch. by_step (None: on the CPU, see _by_step) runs each timestep through
    all its layers before the next, LIFs by LIF.step (they start from rest and are left at
    rest); otherwise each layer runs all T steps in turn. The same computation either way
    (equal in float64; in float32 up to the rounding of convolutions of B against T x B images):
    training-mode BatchNorm normalises each step with that step's statistics in both. By step,
    the LIFs are not called as modules (their spike hooks run; forward hooks on them do not)
    and forward hooks on the other layers see T calls on [B, ...] steps instead of one on
    [T, B, ...]; a static input (one tensor repeated, stride 0 in T) is never stepped."""

    by_step: Optional[bool] = None

    def forward(self, x: Tensor) -> Tensor:
        if not (x.dim() == 5 and x.stride(0) != 0 and _by_step(self.by_step, x)):
            return super().forward(x)
        neurons = [layer for layer in self if isinstance(layer, LIF)]
        for neuron in neurons:
            neuron.reset()
        outputs = []
        try:
            for x_t in x:
                for layer in self:
                    x_t = layer.step(x_t) if isinstance(layer, LIF) else layer(x_t)
                outputs.append(x_t)
        finally:
            for neuron in neurons:
                neuron.reset()
        return torch.stack(outputs)


class ConvBNSequential(SeqSequential):
    """SeqSequential whose fuse() folds each convolution -> BatchNorm pair (fuse_conv_bn),
    and an average pool that follows the pair where it folds too (fold_avg_pool; not with
    fold_pool=False), the places of the folded layers taken by Identities so that the other
    layers keep their names."""

    def fuse(self, fold_pool: bool = True) -> nn.Sequential:
        layers = list(self)
        for k in range(len(layers) - 1):
            conv, bn = layers[k], layers[k + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                pool = layers[k + 2] if k + 2 < len(layers) else None
                if fold_pool and pool_folds_into(conv, pool):
                    layers[k] = fuse_conv_bn(conv, bn, pool)
                    layers[k + 2] = nn.Identity()
                else:
                    layers[k] = fuse_conv_bn(conv, bn)
                layers[k + 1] = nn.Identity()
        fused = _FusedSequential(*layers).train(False)
        fused.by_step = self.by_step
        return fused


class _FusedSequential(_InferenceOnly, SeqSequential):
    """What ConvBNSequential.fuse returns."""


class _Stateless(nn.Module):
    def step(self, x: Tensor) -> Tensor:
        return self(x)

    def reset(self) -> None:
        pass


class Skip(_Stateless):
    def forward(self, x: Tensor) -> Tensor:
        return x


class AvgPoolEdge(_Stateless):
    def __init__(self):
        super().__init__()
        self.pool = SeqAvgPool2d(3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x)


def make_edge(op: int, channels: int, neuron: dict) -> Optional[nn.Module]:
    """The module of operation op (None for 0, the zero operation, which adds nothing)."""
    if op == 1:
        return Skip()
    if op in (2, 3):
        return SpikingConvBN(channels, 1 if op == 2 else 3, neuron)
    if op == 4:
        return AvgPoolEdge()
    return None


def _add(total: Optional[Tensor], term: Optional[Tensor]) -> Optional[Tensor]:
    if total is None:
        return term
    return total if term is None else total + term


class SNASCell(nn.Module):
    """A searched cell of 4 nodes; node 0 is the input, node 3 the output.

    Forward edges: node j = sum over i < j of op(i->j)(input of node i). Feedback edges
    (backward cells): at step t node j sends op(j->i)(input of node j) back to node i, and it
    is added to node i's input at step t+1; the input of node i < 3 is its value plus what it
    was sent. Sums run in increasing order of the source node, as the authors' code adds them.
    In eval mode (and in train mode within spikes_only()) the last step's feedback
    convolutions, which reach no later step, are skipped (their neurons still fire, so spike
    hooks see every step; forward hooks on those convolutions and BatchNorms see T - 1 calls).

    Backward cells run step by step; forward cells too where by_step says so (None: on the
    CPU, see _by_step), and otherwise call each edge as a module on the whole sequence, so
    that forward hooks on edges and neurons fire. Step by step, neurons with equal parameters
    on edges that leave the same node fire alike, so each step computes them once (_spikes).
    """

    by_step: Optional[bool] = None
    spikes_only = False  # see spikes_only()

    def __init__(self, genotype: Genotype, channels: int, neuron: dict):
        super().__init__()
        self.genotype = genotype
        self.edges = nn.ModuleDict()
        for i, j, op in (*genotype.forward_edges, *genotype.feedback_edges):
            self.edges[f"{i}_{j}"] = make_edge(op, channels, neuron)
        self.stepwise = genotype.has_feedback
        self.read_nodes = {NUM_NODES - 1} | {source for source, _, _ in (
            *genotype.forward_edges, *genotype.feedback_edges)}  # nodes some edge leaves

    def _edge(self, i: int, j: int) -> Optional[nn.Module]:
        key = f"{i}_{j}"
        return self.edges[key] if key in self.edges else None

    def _node_value(self, node_inputs: list, j: int, like: Tensor, step: bool, fired: dict,
                    zeros: list) -> Optional[Tensor]:
        """Sum of the forward edges into node j. Where none, zeros as the authors' zero op
        (one tensor for every step, zeros[0], made once and never written to), or None for a
        node that no edge leaves: nothing reads its value."""
        total = None
        for i in range(j):
            edge = self._edge(i, j)
            if edge is not None:
                total = _add(total, self._edge_output(edge, i, node_inputs[i], step, fired))
        if total is not None or j not in self.read_nodes:
            return total
        if not zeros:
            zeros.append(torch.zeros_like(like))
        return zeros[0]

    def _edge_output(self, edge: nn.Module, source: int, x: Tensor, step: bool,
                     fired: dict) -> Tensor:
        """op(x) of an edge leaving node source: one step (its neuron fired through _spikes),
        or a whole sequence as a module call (forward cells not run by step: forward hooks fire)."""
        if not step:
            return edge(x)
        if isinstance(edge, _SpikingEdge):
            return edge.from_spikes(self._spikes(edge.lif, source, x, fired))
        return edge.step(x)

    @staticmethod
    def _spikes(lif: LIF, source: int, x: Tensor, fired: dict) -> Tensor:
        """One step of lif on node source's input x. Neurons with equal parameters on the
        same node are fed the same input from rest, so they fire alike: the first computes,
        the others adopt its spikes (fired maps (source, key) to them). The authors' network
        computes each; the results and spike hooks are the same, and the gradients only sum
        in another order. (Steps are method calls, so no forward hook sees them either way.)"""
        key = (source, lif.sharing_key)
        if key in fired:
            leader, spikes = fired[key]
            return lif.adopt(leader, spikes, multistep=False)
        spikes = lif.step(x)
        fired[key] = (lif, spikes)
        return spikes

    def forward(self, x_seq: Tensor) -> Tensor:
        """x_seq [T, B, C, H, W] -> output node [T, B, C, H, W]; starts from rest."""
        if not (self.stepwise or _by_step(self.by_step, x_seq)):
            node_inputs, fired = [x_seq], {}
            for j in range(1, NUM_NODES):
                node_inputs.append(self._node_value(node_inputs, j, x_seq, False, fired, []))
            return node_inputs[-1]
        for edge in self.edges.values():
            edge.reset()
        try:
            feedback = [None] * (NUM_NODES - 1)
            outputs, zeros = [], []
            for t, x_t in enumerate(x_seq):
                node_inputs, fired = [_add(x_t, feedback[0])], {}
                for j in range(1, NUM_NODES):
                    value = self._node_value(node_inputs, j, x_t, True, fired, zeros)
                    node_inputs.append(_add(value, feedback[j]) if j < NUM_NODES - 1 else value)
                outputs.append(node_inputs[-1])
                if t == len(x_seq) - 1 and (not self.training or self.spikes_only):
                    self._fire_last_feedback(node_inputs, fired)
                    break
                feedback = [None] * (NUM_NODES - 1)
                for i, j, edge in self._feedback_edges():
                    sent = self._edge_output(edge, j, node_inputs[j], True, fired)
                    feedback[i] = _add(feedback[i], sent)
        finally:  # at rest also when a step fails (an interrupt, a hook that raises)
            for edge in self.edges.values():
                edge.reset()
        return torch.stack(outputs)

    def _fire_last_feedback(self, node_inputs: list, fired: dict) -> None:
        """The last step's feedback reaches no later step. In eval mode, where BatchNorm keeps
        no statistics, and within spikes_only(), only its neurons fire (spike hooks see every
        step); the convolutions and BatchNorms after them are skipped. Training runs them for
        the running statistics."""
        for _, j, edge in self._feedback_edges():
            if isinstance(edge, _SpikingEdge):
                self._spikes(edge.lif, j, node_inputs[j], fired)

    def _feedback_edges(self):
        """(target i, source j, edge) of every feedback edge, in the order the authors add
        what each node is sent: by target, then by source."""
        for i in range(NUM_NODES - 1):
            for j in range(i + 1, NUM_NODES):
                edge = self._edge(j, i)
                if edge is not None:
                    yield i, j, edge
