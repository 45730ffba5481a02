"""An independent NIR interpreter in numpy, for tests: it runs a NIR graph step by step.

Written from NIR's published node definitions (the docstrings of the `nir` package, 1.0.8,
nir/ir/*.py, quoted at each node below) and not from snnzoo's code, so that a test comparing
an exported snnzoo model with this simulation checks the export against a second reading.

    result = simulate(graph, inputs, dt)   # inputs: [T, B, *input_shape], dt in seconds
    result["output"]             # the one Output node's values, [T, B, *output_shape]
    result["outputs"][name]      # every Output node's values by name
    result["spikes"][name]       # spikes (0/1) of every LIF, IF, CubaLIF and Threshold node
    result["potentials"][name]   # the output v of every LI, I and CubaLI node

Semantics, where NIR leaves a choice open:
- Discrete time, step dt. At each step every edge carries its source node's output of that
  step; the edges into one node are summed (NIR's rule for several inputs); a node with no
  incoming edge receives 0.
- Order: each step evaluates the nodes in a topological order of the graph with the edges
  leaving Delay nodes removed (a Delay's output at step t depends only on inputs of earlier
  steps). A cycle not broken by a Delay, or by a Delay of zero steps, is refused, and so is a
  node type this module does not know. Node order in graph.nodes does not matter (nir.read
  returns the nodes in alphabetical order).
- Neurons: forward Euler of the node's differential equations with step dt. The derivative
  is taken at the state of the previous step and the input of the present step:
  v[t] = v[t-1] + dt * f(v[t-1], x[t]); then, for spiking nodes, z[t] = v[t] > v_threshold
  (strict, as NIR writes it) and v[t] = v_reset where z[t] (reset to a value, not by
  subtraction). A spike leaves the neuron in the step its input arrives (no extra step).
  CubaLIF and CubaLI: the current I and the voltage v step together from the previous
  state, so v[t] uses I[t-1] (plain forward Euler; the input reaches v one step later).
- Initial state: v = v_leak for the leaky nodes (LIF, LI, CubaLIF, CubaLI), the rest
  point of their equation without input, and Norse's initial state; v = 0 for IF and I,
  which have no v_leak; the synaptic current I = 0. For v_leak = 0 (snnTorch's LIF and most
  exports) all start from 0, as snnTorch does.
- Delay: y(t) = x(t - delay). delay (seconds, one value per element) must be a whole number
  of steps, k = delay / dt; the output is x[t - k], and 0 while t < k.
- AvgPool2d: NIR does not say whether zero padding counts in the divisor. We follow
  nirtorch 2.6's default mapping, torch.nn.AvgPool2d with its defaults
  (count_include_pad=True, ceil_mode=False): every window divides by kh * kw.
- SumPool2d: the sum over each window, zero padding included (it adds nothing).
- Conv1d/Conv2d: as torch's convolution (cross-correlation, NIR names its parameters after
  PyTorch's): padding int, tuple, 'valid' (none) or 'same' (total dilation * (k - 1), the
  odd one on the right, as torch pads; stride 1 only).
- Flatten: start_dim and end_dim index the per-sample shape (no batch axis), as
  nir.ir.utils.calc_flatten_output reads them; the elements keep C (row-major) order.
- Numbers: every array is computed in float64 whatever the dtype of the inputs and the
  parameters (float32 weights and inputs are exact in float64); spikes are float64 0/1.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

import nir

__all__ = ["simulate"]

_SPIKING = (nir.LIF, nir.IF, nir.CubaLIF, nir.Threshold)
_POTENTIAL = (nir.LI, nir.I, nir.CubaLI)
_LEAKY = (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI)  # the nodes that start at v = v_leak


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _ints(value, n: int, name: str) -> tuple:
    """An int or a sequence of n ints (ints, numpy arrays as nir.read gives) as n ints."""
    array = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    if array.size == 1:
        array = np.repeat(array, n)
    if array.size != n:
        raise ValueError(f"{name} {value!r}: expected 1 or {n} values")
    return tuple(int(a) for a in array)


# --- the stateless nodes, one function each: x is [B, *shape] -----------------------------


def _padding(padding, kernel: tuple, dilation: tuple, stride: tuple, name: str) -> list:
    """(before, after) zero padding for each spatial axis."""
    if isinstance(padding, np.ndarray) and padding.dtype.kind in "SU":
        padding = padding.item()
    if isinstance(padding, bytes):  # h5py may hand a string back as bytes
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * len(kernel)
        if padding != "same":
            raise ValueError(f"{name}: padding {padding!r} is not 'same', 'valid' or ints")
        if any(s != 1 for s in stride):
            raise ValueError(f"{name}: padding 'same' needs stride 1 (as torch), not {stride}")
        total = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [(t // 2, t - t // 2) for t in total]
    return [(p, p) for p in _ints(padding, len(kernel), f"{name}: padding")]


def _windows(x: np.ndarray, kernel: tuple, stride: tuple, dilation: tuple, pads: list):
    """x [B, C, *spatial] zero-padded, as windows [B, C, *out, *kernel] (a view, no loop)."""
    n = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    w = sliding_window_view(x, span, axis=tuple(range(2, 2 + n)))
    # every stride-th window, every dilation-th element inside a window
    index = (slice(None), slice(None), *(slice(None, None, s) for s in stride),
             *(slice(None, None, d) for d in dilation))
    return w[index]


def _conv(node, x: np.ndarray, name: str) -> np.ndarray:
    # nir.Conv1d / nir.Conv2d: weight (C_out, C_in / groups, *kernel), bias (C_out,),
    # stride, padding ('same', 'valid', int or per axis), dilation, groups; as torch.
    weight, bias = _f64(node.weight), _f64(node.bias)
    n = weight.ndim - 2
    kernel = weight.shape[2:]
    stride = _ints(node.stride, n, f"{name}: stride")
    dilation = _ints(node.dilation, n, f"{name}: dilation")
    pads = _padding(node.padding, kernel, dilation, stride, name)
    groups = int(np.asarray(node.groups).item())
    c_out, c_group = weight.shape[:2]
    batch, c_in = x.shape[:2]
    if c_in != c_group * groups or c_out % groups:
        raise ValueError(f"{name}: {c_in} input channels, weight {weight.shape}, groups {groups}")
    win = _windows(x, kernel, stride, dilation, pads)  # [B, C_in, *out, *kernel]
    out_shape = win.shape[2:2 + n]
    win = win.reshape(batch, groups, c_group, *out_shape, *kernel)
    weight = weight.reshape(groups, c_out // groups, c_group, *kernel)
    o, k = "pqrs"[:n], "wxyz"[:n]  # letters of the output and the kernel axes
    y = np.einsum(f"bgc{o}{k},goc{k}->bgo{o}", win, weight, optimize=True)
    y = y.reshape(batch, c_out, *out_shape)
    return y + bias.reshape(c_out, *([1] * n))


def _pool(node, x: np.ndarray, name: str, average: bool) -> np.ndarray:
    # nir.AvgPool2d / nir.SumPool2d: kernel_size, stride, padding (height, width).
    kernel = _ints(node.kernel_size, 2, f"{name}: kernel_size")
    stride = kernel if node.stride is None else _ints(node.stride, 2, f"{name}: stride")
    pads = [(p, p) for p in _ints(node.padding, 2, f"{name}: padding")]
    y = _windows(x, kernel, stride, (1, 1), pads).sum(axis=(-2, -1))
    # AvgPool2d: zero padding counts in the divisor (torch's count_include_pad=True, the
    # default that nirtorch 2.6 maps AvgPool2d to); NIR's docs say nothing of it.
    return y / (kernel[0] * kernel[1]) if average else y


def _flatten(node, x: np.ndarray) -> np.ndarray:
    # nir.Flatten: start_dim, end_dim of the per-sample shape (calc_flatten_output).
    shape = x.shape[1:]
    start = int(node.start_dim) % len(shape)
    end = int(node.end_dim) % len(shape)
    merged = int(np.prod(shape[start:end + 1]))
    return x.reshape(x.shape[0], *shape[:start], merged, *shape[end + 1:])


def _matmul(weight, x: np.ndarray) -> np.ndarray:
    # W x for W (..., out, in): x [B, ..., in] -> [B, ..., out]
    return (_f64(weight) @ x[..., None])[..., 0]


# --- the nodes with state: one class each, step(x) -> output of this step -----------------


class _Neuron:
    """LIF, IF, LI, I, CubaLIF, CubaLI: forward Euler with step dt (see the module's text)."""

    def __init__(self, node, batch: int, dt: float):
        self.node, self.dt = node, dt
        p = {k: _f64(getattr(node, k)) for k in
             ("tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in")
             if getattr(node, k, None) is not None}
        self.p = p
        shape = (batch, *p["r"].shape)
        start = p["v_leak"] if isinstance(node, _LEAKY) else 0.0
        self.v = np.broadcast_to(start, shape).copy()
        self.i = np.zeros(shape)  # the synaptic current of CubaLIF / CubaLI

    def step(self, x: np.ndarray) -> np.ndarray:
        p, dt, v, node = self.p, self.dt, self.v, self.node
        if isinstance(node, (nir.LIF, nir.LI)):
            # LIF, LI: "tau \dot{v} = (v_{leak} - v) + R I"
            v = v + dt / p["tau"] * ((p["v_leak"] - v) + p["r"] * x)
        elif isinstance(node, (nir.IF, nir.I)):
            # IF, I: "\dot{v} = R I"
            v = v + dt * p["r"] * x
        else:  # CubaLIF, CubaLI
            # "\tau_{syn} \dot {I} = - I + w_{in} S" and
            # "\tau_{mem} \dot {v} = (v_{leak} - v) + R I", both from the previous state
            v = v + dt / p["tau_mem"] * ((p["v_leak"] - v) + p["r"] * self.i)
            self.i = self.i + dt / p["tau_syn"] * (-self.i + p["w_in"] * x)
        if not isinstance(node, _SPIKING):
            self.v = v
            return v.copy()
        # "z = 1 if v > v_{thr} else 0"; "v = v_{reset} if z = 1 else v"
        z = v > p["v_threshold"]
        self.v = np.where(z, p["v_reset"], v)
        return z.astype(np.float64)


class _Delay:
    """nir.Delay: "y(t) = x(t - \\tau)", delay in seconds, a whole number of steps k >= 0
    per element; the output is 0 until the first input arrives (t < k)."""

    def __init__(self, node, batch: int, dt: float, name: str):
        ratio = _f64(node.delay) / dt
        self.steps = np.rint(ratio).astype(np.int64)
        if np.any(np.abs(ratio - self.steps) > 1e-6 * np.maximum(1.0, ratio)) or np.any(
                self.steps < 0):
            raise ValueError(f"Delay node {name!r}: delay {node.delay} is not a whole "
                             f"number of steps of dt={dt}")
        # past[j] holds the input of step t-1-j (j = 0 .. max k - 1); zeros before any input
        depth = max(int(self.steps.max()), 1)
        self.past = np.zeros((depth, batch, *self.steps.shape))
        self.breaks_cycles = bool(np.all(self.steps >= 1))
        self.pending = np.zeros_like(self.past[0])  # this step's input, once known

    def _gather(self, stack: np.ndarray, index: np.ndarray) -> np.ndarray:
        index = np.broadcast_to(index, (1, *stack.shape[1:]))
        return np.take_along_axis(stack, index, axis=0)[0]

    def early_output(self) -> np.ndarray:
        """The output of this step before its input is known (every k >= 1)."""
        return self._gather(self.past, self.steps - 1)

    def output(self, x: np.ndarray) -> np.ndarray:
        """The output of this step given its input (k = 0 reads the input itself)."""
        return self._gather(np.concatenate([x[None], self.past]), self.steps)

    def push(self, x: np.ndarray) -> None:
        """At the end of the step: x, this step's input, becomes the past."""
        self.past = np.concatenate([x[None], self.past[:-1]])


# --- the graph ------------------------------------------------------------------------------


def _find_cycle(left: set, predecessors: dict) -> list:
    """One cycle among the nodes left over by a topological sort, as [a, b, ..., a]. Each of
    them has a predecessor among them (else it would have been sorted): walk back to one."""
    path, seen = [min(left)], set()
    while path[-1] not in seen:
        seen.add(path[-1])
        path.append(min(p for p in predecessors[path[-1]] if p in left))
    path = path[path.index(path[-1]):]  # from the first visit of the repeated node on
    return path[::-1]


def _order(nodes: dict, edges: list, cut: set) -> list:
    """A topological order of the graph without the edges that leave the nodes in cut."""
    kept = [(a, b) for a, b in edges if a not in cut]
    successors = {name: [b for a, b in kept if a == name] for name in nodes}
    predecessors = {name: [a for a, b in kept if b == name] for name in nodes}
    indegree = {name: len(predecessors[name]) for name in nodes}
    ready = sorted(n for n, d in indegree.items() if d == 0)
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for b in successors[name]:
            indegree[b] -= 1
            if indegree[b] == 0:
                ready.append(b)
        ready.sort()
    if len(order) < len(nodes):
        cycle = _find_cycle(set(nodes) - set(order), predecessors)
        raise ValueError("NIR graph has a cycle without a Delay node (of at least one "
                         "step): " + " -> ".join(cycle))
    return order


_KNOWN = (nir.Input, nir.Output, nir.Conv1d, nir.Conv2d, nir.AvgPool2d, nir.SumPool2d,
          nir.Flatten, nir.Linear, nir.Affine, nir.Scale, nir.Threshold, nir.Delay,
          nir.LIF, nir.IF, nir.LI, nir.I, nir.CubaLIF, nir.CubaLI)


def simulate(graph: nir.NIRGraph, inputs: np.ndarray, dt: float | None = None) -> dict:
    """Run graph on inputs [T, B, *input_shape] (one Input node) with time step dt seconds
    (default: graph.metadata["dt"]). Returns a dict: "output" [T, B, ...] (the Output node,
    when there is one), "outputs" {Output name: [T, B, ...]}, "spikes" {name: [T, B, ...]}
    of the LIF, IF, CubaLIF and Threshold nodes, "potentials" {name: [T, B, ...]} of the LI,
    I and CubaLI nodes. Everything in float64; see the module's text for the semantics."""
    if dt is None:
        if "dt" not in (graph.metadata or {}):
            raise ValueError("no dt given and none in graph.metadata['dt']")
        dt = graph.metadata["dt"]
    dt = float(np.asarray(dt).item())
    nodes, edges = graph.nodes, [(str(a), str(b)) for a, b in graph.edges]
    for name, node in nodes.items():
        if not isinstance(node, _KNOWN):
            raise NotImplementedError(f"node {name!r}: NIR node type "
                                      f"{type(node).__name__} is not supported here")
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise ValueError(f"edge ({a!r}, {b!r}) names a node that is not in the graph")
    input_names = [n for n, node in nodes.items() if isinstance(node, nir.Input)]
    if len(input_names) != 1:
        raise ValueError(f"expected one Input node, found {sorted(input_names)}")
    input_name = input_names[0]
    inputs = _f64(inputs)
    shape = tuple(int(s) for s in np.atleast_1d(nodes[input_name].input_type["input"]))
    if inputs.ndim < 2 or inputs.shape[2:] != shape:
        raise ValueError(f"inputs of shape {inputs.shape}: expected [T, B, *{shape}] for "
                         f"Input node {input_name!r}")
    steps, batch = inputs.shape[:2]

    states = {}
    for name, node in nodes.items():
        if isinstance(node, nir.Delay):
            states[name] = _Delay(node, batch, dt, name)
        elif isinstance(node, (*_SPIKING, *_POTENTIAL)) and not isinstance(node, nir.Threshold):
            states[name] = _Neuron(node, batch, dt)
    cut = {n for n, s in states.items() if isinstance(s, _Delay) and s.breaks_cycles}
    order = _order(nodes, edges, cut)
    sources = {name: [a for a, b in edges if b == name] for name in nodes}

    def incoming(name: str, out: dict) -> np.ndarray:
        if not sources[name]:  # no incoming edge: 0, of the node's input shape
            node_type = (nodes[name].input_type or {}).get("input")
            if node_type is None:
                raise ValueError(f"node {name!r} has no incoming edge and no input_type")
            return np.zeros((batch, *(int(s) for s in np.atleast_1d(node_type))))
        return sum(out[a] for a in sources[name])

    record = {n: [] for n, node in nodes.items()
              if isinstance(node, (nir.Output, *_SPIKING, *_POTENTIAL))}
    for t in range(steps):
        out = {n: states[n].early_output() for n in cut}
        for name in order:
            node = nodes[name]
            if isinstance(node, nir.Input):
                out[name] = inputs[t]
                continue
            x = incoming(name, out)
            if isinstance(node, nir.Delay):
                if name not in cut:
                    out[name] = states[name].output(x)
                states[name].pending = x
            elif name in states:
                out[name] = states[name].step(x)
            elif isinstance(node, nir.Output):
                out[name] = x
            elif isinstance(node, (nir.Conv1d, nir.Conv2d)):
                out[name] = _conv(node, x, name)
            elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                out[name] = _pool(node, x, name, average=isinstance(node, nir.AvgPool2d))
            elif isinstance(node, nir.Flatten):
                out[name] = _flatten(node, x)
            elif isinstance(node, nir.Affine):
                # Affine: "y(t) = W*x(t) + b"
                out[name] = _matmul(node.weight, x) + _f64(node.bias)
            elif isinstance(node, nir.Linear):
                # Linear: "y(t) = W*x(t)"
                out[name] = _matmul(node.weight, x)
            elif isinstance(node, nir.Scale):
                # Scale: "y(t) = x(t) \odot s"
                out[name] = x * _f64(node.scale)
            elif isinstance(node, nir.Threshold):
                # Threshold: "z = 1 if v > v_{thr} else 0"
                out[name] = (x > _f64(node.threshold)).astype(np.float64)
        for name, state in states.items():
            if isinstance(state, _Delay):
                state.push(state.pending)
        for name, values in record.items():
            values.append(out[name])

    result = {"outputs": {}, "spikes": {}, "potentials": {}}
    for name, values in record.items():
        node = nodes[name]
        group = ("outputs" if isinstance(node, nir.Output) else
                 "spikes" if isinstance(node, _SPIKING) else "potentials")
        result[group][name] = np.stack(values) if values else np.zeros((0, batch))
    if len(result["outputs"]) == 1:
        result["output"] = next(iter(result["outputs"].values()))
    return result
