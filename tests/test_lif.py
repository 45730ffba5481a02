"""The LIF neuron: Triton kernels and the CPU path against the autograd reference, the
reference against hand-computed values and finite differences, step against multi-step."""

import itertools
import math
import os
import subprocess
import sys
import warnings

import pytest
import torch

from conftest import assert_close, assert_equal
from snnzoo.kernels import LIFParams, lif_multistep, lif_multistep_reference, lif_step
from snnzoo.layers import LIF

TOLERANCES = {torch.float32: (1e-5, 1e-5), torch.float16: (2e-3, 2e-3), torch.bfloat16: (2e-2, 2e-2)}
NEURON_CONFIGS = [
    dict(v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset, surrogate=surrogate)
    for v_reset, decay_input, detach_reset, surrogate in itertools.product(
        (0.0, None), (True, False), (True, False), ("atan", "sigmoid"))
]


def _config_id(config):
    return "-".join(f"{key}={value}" for key, value in config.items())


def _drive(shape, dtype, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator) * 1.5 + 0.4
    grad = torch.randn(shape, generator=generator)
    return x.to(device, dtype), grad.to(device, dtype)


def _spikes_and_grad(x, grad_spikes, params, backend):
    x = x.detach().requires_grad_()
    spikes = lif_multistep(x, params, backend)
    (grad_x,) = torch.autograd.grad(spikes, x, grad_spikes)
    return spikes, grad_x


def _compare_with_reference(x, grad_spikes, params, backend):
    spikes, grad_x = _spikes_and_grad(x, grad_spikes, params, backend)
    ref_spikes, ref_grad_x = _spikes_and_grad(x, grad_spikes, params, "torch")
    assert spikes.dtype == x.dtype and grad_x.dtype == x.dtype
    assert_equal(spikes, ref_spikes, f"{backend} spikes")
    atol, rtol = TOLERANCES[x.dtype]
    assert_close(grad_x, ref_grad_x, atol, rtol, f"{backend} dL/dx")
    assert 0.02 < spikes.float().mean() < 0.9, "the drive should make some but not all neurons fire"


@pytest.mark.parametrize("config", NEURON_CONFIGS, ids=_config_id)
@pytest.mark.parametrize("steps", [1, 2, 5, 8])
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_triton_matches_reference(config, steps, dtype, device):
    x, grad_spikes = _drive((steps, 3, 347), dtype, device)
    _compare_with_reference(x, grad_spikes, LIFParams(**config), "triton")


@pytest.mark.parametrize("shape", [(5, 1), (5, 1030), (2, 3, 5, 7, 11), (1, 2049)])
def test_triton_odd_sizes(shape, device):
    x, grad_spikes = _drive(shape, torch.float32, device)
    _compare_with_reference(x, grad_spikes, LIFParams(), "triton")


@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_non_contiguous_input(backend, device):
    x, grad_spikes = _drive((7, 40, 5), torch.float32, device)
    x = x.transpose(1, 2)  # [T, 5, 40], not contiguous
    assert not x.is_contiguous()
    _compare_with_reference(x, grad_spikes.transpose(1, 2), LIFParams(), backend)


@pytest.mark.parametrize("config", NEURON_CONFIGS, ids=_config_id)
@pytest.mark.parametrize("dtype", list(TOLERANCES), ids=str)
def test_eager_cpu_path_matches_reference(config, dtype, monkeypatch):
    monkeypatch.setenv("SNNZOO_COMPILE_CPU", "0")
    x, grad_spikes = _drive((5, 3, 347), dtype, "cpu")
    _compare_with_reference(x, grad_spikes, LIFParams(**config), "auto")


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 5])
def test_compiled_cpu_path_matches_reference(steps):
    x, grad_spikes = _drive((steps, 4, 99), torch.float32, "cpu")
    _compare_with_reference(x, grad_spikes, LIFParams(), "auto")
    _compare_with_reference(x, grad_spikes, LIFParams(v_reset=None, detach_reset=False), "auto")


def _threshold_edge(decay_input: bool, device):
    """[2, 64, 97] inputs: a first step below the threshold, then second-step inputs that put
    the membrane within a few ulp of it (each exact edge and 48 floats either side)."""
    params = LIFParams(decay_input=decay_input)
    tau, threshold = params.tau, params.v_threshold
    first = torch.linspace(0.0, 0.99, 64, dtype=torch.float64)  # at rest, no spike at step 0
    v = first / tau if decay_input else first
    # x such that h = v + (x - v) / tau (decay_input) or v - v / tau + x equals the threshold
    edge = (v + tau * (threshold - v) if decay_input else threshold - v + v / tau).float()
    nudges = [edge]
    for _ in range(48):
        nudges.append(torch.nextafter(nudges[-1], torch.tensor(math.inf)))
        nudges.insert(0, torch.nextafter(nudges[0], torch.tensor(-math.inf)))
    second = torch.stack(nudges, dim=1)
    return torch.stack([first.float()[:, None].expand_as(second), second]).to(device), params


def _spikes_multiplying_by_the_reciprocal(x, params):
    """Hard-reset spikes with the charge computed as torch's CUDA kernels compute v + (x - v) /
    tau: a multiplication by fp32(1 / fp32(tau)), every operation rounded to fp32."""
    inverse = torch.tensor(1.0) / torch.tensor(params.tau, dtype=torch.float32)
    v, spikes = torch.zeros_like(x[0]), []
    for x_t in x:
        h = v + (x_t - v) * inverse if params.decay_input else v - v * inverse + x_t
        spikes.append((h >= params.v_threshold).float())
        v = torch.where(h >= params.v_threshold, 0.0, h)
    return torch.stack(spikes)


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_membranes_on_the_threshold_fire_as_the_reference(decay_input, backend, device):
    """Only a charge rounded as torch rounds it on the same device fires exactly where the
    reference does (kernels/lif/, "rounds the charge"). The interpreter divides exactly; on
    CUDA this checks the compiled kernel, on the CPU the compiled torch path."""
    x, params = _threshold_edge(decay_input, device)
    spikes = lif_multistep(x, params, backend)
    reference = lif_multistep_reference(x, params)
    assert_equal(spikes, reference, f"{backend} spikes on the threshold's edge")
    assert 0 < reference[1].mean() < 1


@pytest.mark.parametrize("decay_input", [True, False])
def test_kernel_multiplies_by_the_reciprocal_as_torch_on_cuda(decay_input, device, monkeypatch):
    """The kernel's CUDA rounding (under the interpreter too) equals torch's CUDA arithmetic
    emulated on the CPU, which differs from IEEE division on these inputs."""
    from snnzoo.kernels.lif import triton_kernels
    monkeypatch.setattr(triton_kernels, "_divides_by_reciprocal", lambda tensor: True)
    x, params = _threshold_edge(decay_input, device)
    expected = _spikes_multiplying_by_the_reciprocal(x.cpu(), params)
    ieee = lif_multistep_reference(x.cpu(), params)
    assert (expected != ieee).any(), "the inputs should tell the two roundings apart"
    assert_equal(lif_multistep(x, params, "triton").cpu(), expected, "reciprocal rounding")


def test_reference_hand_computed():
    # tau=2, threshold 1, hard reset to 0, atan with alpha=2: surrogate'(u) = 1 / (1 + (pi u)^2)
    params = LIFParams(tau=2.0, v_threshold=1.0, v_reset=0.0, surrogate="atan", alpha=2.0)
    x = torch.tensor([[1.5], [1.5], [0.4]], requires_grad=True)
    spikes = lif_multistep_reference(x, params)
    # h0 = 0.75 (no spike, v0 = 0.75); h1 = 0.75 + (1.5 - 0.75)/2 = 1.125 (spike, v1 = 0);
    # h2 = 0.4/2 = 0.2 (no spike)
    assert spikes.flatten().tolist() == [0.0, 1.0, 0.0]
    spikes.sum().backward()
    surrogate = lambda u: 1.0 / (1.0 + (math.pi * u) ** 2)  # noqa: E731
    grad_h2 = surrogate(0.2 - 1)
    grad_h1 = surrogate(1.125 - 1)  # dv1/dh1 = 1 - s1 = 0 cuts h2's path (detached reset)
    grad_h0 = surrogate(0.75 - 1) + grad_h1 * (1 - 1 / 2) * 1.0  # dh1/dv0 = 1 - 1/tau, dv0/dh0 = 1
    expected = torch.tensor([[grad_h0 / 2], [grad_h1 / 2], [grad_h2 / 2]])
    assert_close(x.grad, expected, 1e-6, 1e-6, "hand-computed dL/dx")

    soft = LIFParams(tau=2.0, v_threshold=1.0, v_reset=None)
    # soft reset: v1 = 1.125 - 1 = 0.125, h2 = 0.125 + (0.4 - 0.125)/2 = 0.2625 (no spike)
    assert lif_multistep_reference(x.detach(), soft).flatten().tolist() == [0.0, 1.0, 0.0]
    no_decay = LIFParams(tau=2.0, decay_input=False)
    # h0 = 0 - 0 + 1.5 = 1.5 spike; h1 = 1.5 spike; h2 = 0.4 no spike
    assert lif_multistep_reference(x.detach(), no_decay).flatten().tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("decay_input", [True, False])
def test_reference_surrogate_matches_finite_differences(surrogate, v_reset, decay_input):
    # Replacing the step by the smooth function the surrogate differentiates makes the whole
    # neuron smooth; its backward (the surrogate formula, the reset's derivative) must then
    # agree with finite differences. Detached resets are not the true derivative: off here.
    params = LIFParams(surrogate=surrogate, v_reset=v_reset, decay_input=decay_input,
                       detach_reset=False)
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) + 0.8
    x.requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: lif_multistep_reference(inp, params, smooth=True),
                                    (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["triton", "auto", "torch"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_step_equals_multistep(backend, v_reset, device):
    x, grad_spikes = _drive((5, 2, 37), torch.float32, device)
    x.requires_grad_()
    lif = LIF(v_reset=v_reset, detach_reset=False, backend=backend)
    stepped = torch.stack([lif.step(x_t) for x_t in x])
    (grad_stepped,) = torch.autograd.grad(stepped, x, grad_spikes)
    lif.reset()
    assert lif.v is None
    whole = lif(x)
    (grad_whole,) = torch.autograd.grad(whole, x, grad_spikes)
    assert_equal(stepped, whole, "step vs multi-step spikes")
    assert_close(grad_stepped, grad_whole, 1e-5, 1e-5, "step vs multi-step dL/dx")


@pytest.mark.parametrize("backend", ["triton", "auto", "torch"])
def test_step_refuses_what_multistep_refuses(backend, device):
    # backend="torch" skipped the checks: integer and bool input ran, and a membrane of
    # another shape was broadcast against the input (a [3, 4] membrane for a [4] input).
    lif = LIF(backend=backend)
    for dtype in (torch.int64, torch.bool):
        with pytest.raises(ValueError, match=f"dtype {dtype} is unsupported"):
            lif.step(torch.ones(3, 4, device=device, dtype=dtype))
    with pytest.raises(ValueError, match=r"membrane shape \(3, 4\) does not match input shape \(4,\)"):
        lif_step(torch.ones(4, device=device), torch.zeros(3, 4, device=device),
                 LIFParams(), backend)
    with pytest.raises(ValueError, match="membrane is on meta but the input is on"):
        lif_step(torch.ones(4, device=device), torch.zeros(4, device="meta"), LIFParams(), backend)
    with pytest.raises(ValueError, match="membrane dtype torch.int64 is not a floating dtype"):
        lif_step(torch.ones(4, device=device), torch.zeros(4, dtype=torch.int64, device=device),
                 LIFParams(), backend)


@pytest.mark.parametrize("backend", ["triton", "auto", "torch"])
@pytest.mark.parametrize("membrane_dtype", [torch.float16, torch.bfloat16, torch.float64], ids=str)
def test_step_reads_a_membrane_of_another_dtype_as_fp32(membrane_dtype, backend, device):
    # The Triton kernel loaded any membrane pointer as it was (the interpreter refused fp16
    # and fp64), and the reference computed in float64 for a float64 membrane.
    x, grad_spikes = _drive((2, 37), torch.float32, device)
    membrane = _drive((2, 37), torch.float32, device, seed=1)[0].to(membrane_dtype)
    params = LIFParams(detach_reset=False)
    results = []
    for v in (membrane, membrane.float()):
        v = v.detach().requires_grad_()
        x_in = x.detach().requires_grad_()
        spikes, v_next = lif_step(x_in, v, params, backend)
        assert v_next.dtype == torch.float32
        grads = torch.autograd.grad((spikes, v_next), (x_in, v), (grad_spikes, grad_spikes))
        results.append((spikes, v_next, *grads))
    for what, actual, expected in zip(("spikes", "v", "dL/dx", "dL/dv"), *results):
        assert_equal(actual, expected.to(actual.dtype), f"{membrane_dtype} membrane: {what}")
    assert results[0][3].dtype == membrane_dtype


@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_double_backward_of_the_fused_neuron_is_a_clear_error(backend, device):
    # The fused backward has no autograd graph: a second backward raised "element 0 of tensors
    # does not require grad" for Triton, and on the CPU path silently differentiated its own
    # formula (another value than the reference's double backward).
    x, grad_spikes = _drive((4, 2, 37), torch.float32, device)
    params = LIFParams(detach_reset=False)
    x = x.requires_grad_()
    spikes = lif_multistep(x, params, backend)
    (grad_x,) = torch.autograd.grad(spikes, x, grad_spikes, create_graph=True)
    (expected,) = torch.autograd.grad(lif_multistep(x, params, backend), x, grad_spikes)
    assert_equal(grad_x, expected, "dL/dx with create_graph=True")
    with pytest.raises(RuntimeError, match="cannot be differentiated again.*backend='torch'"):
        torch.autograd.grad(grad_x.square().sum(), x)
    v = torch.zeros(2, 37, device=device, requires_grad=True)
    spikes, v_next = lif_step(x[0], v, params, backend)
    (grad_v,) = torch.autograd.grad((spikes * grad_spikes[0]).sum() + v_next.sum(), v,
                                    create_graph=True)
    with pytest.raises(RuntimeError, match="cannot be differentiated again"):
        grad_v.sum().backward()
    # the reference differentiates its surrogate again
    reference = lif_multistep(x, params, "torch")
    (grad_x,) = torch.autograd.grad(reference, x, grad_spikes, create_graph=True)
    assert torch.autograd.grad(grad_x.square().sum(), x)[0].abs().max() > 0


def _channels_last(x):
    """[T, B, C, H, W] with each step stored NHWC (a 5-D tensor as channels_last 4-D steps)."""
    return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_channels_last_runs_in_its_layout(backend, device):
    x, grad_spikes = _drive((4, 2, 5, 3, 7), torch.float32, device)
    x_cl = _channels_last(x)
    _compare_with_reference(x_cl, _channels_last(grad_spikes), LIFParams(), backend)
    assert lif_multistep(x_cl, LIFParams(), backend).stride() == x_cl.stride()
    # step by step: spikes and the stored membrane stay NHWC, values as in NCHW
    lif = LIF(backend=backend)
    x_cl = x_cl.detach().requires_grad_()
    stepped = [lif.step(x_t) for x_t in x_cl]
    assert all(s.is_contiguous(memory_format=torch.channels_last) for s in stepped)
    assert lif.v.is_contiguous(memory_format=torch.channels_last)
    (grad_stepped,) = torch.autograd.grad(torch.stack(stepped), x_cl, grad_spikes)
    lif.reset()
    x_nchw = x.detach().requires_grad_()
    expected = lif(x_nchw)
    (grad_expected,) = torch.autograd.grad(expected, x_nchw, grad_spikes)
    assert_equal(torch.stack(stepped), expected, "channels_last steps vs NCHW multi-step")
    assert_close(grad_stepped, grad_expected, 1e-5, 1e-5, "channels_last steps: dL/dx")
    # a membrane handed over in another layout than the input's is read by value
    lif.reset()
    lif.step(x[0])
    assert_equal(lif.step(x_cl[1].detach()), expected[1], "NCHW membrane, NHWC input")


def _saved_bytes(run):
    """Bytes of the tensors autograd keeps for the backward of run()."""
    storages = {}

    def pack(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        run()
    return storages


@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_forward_saves_only_its_input(backend, device):
    x = torch.randn(5, 300, device=device, requires_grad=True)
    saved = _saved_bytes(lambda: lif_multistep(x, LIFParams(), backend))
    assert saved == {x.untyped_storage().data_ptr(): x.untyped_storage().nbytes()}
    with torch.no_grad():
        assert _saved_bytes(lambda: lif_multistep(x, LIFParams(), backend)) == {}
    assert _saved_bytes(lambda: lif_multistep(x.detach(), LIFParams(), backend)) == {}


@pytest.mark.parametrize("backend", ["triton", "auto"])
def test_long_sequence_saves_one_fp32_membrane(backend, device):
    from snnzoo.kernels.lif import MAX_RECOMPUTE_STEPS
    x, grad_spikes = _drive((MAX_RECOMPUTE_STEPS + 3, 2, 30), torch.bfloat16, device)
    x.requires_grad_()
    saved = _saved_bytes(lambda: lif_multistep(x, LIFParams(), backend))
    assert list(saved.values()) == [x.numel() * 4]
    _compare_with_reference(x.detach(), grad_spikes, LIFParams(detach_reset=False), backend)


def test_long_sequences_run_the_cpu_path_eagerly(monkeypatch):
    # torch.compile unrolls the time loop: compiling takes seconds per step, and every new T
    # compiles again. Sequences longer than MAX_RECOMPUTE_STEPS run eagerly.
    from snnzoo.kernels import _compiled
    from snnzoo.kernels.lif import MAX_RECOMPUTE_STEPS
    compiled = []
    monkeypatch.setenv("SNNZOO_COMPILE_CPU", "1")
    monkeypatch.setattr(_compiled, "_compiled",
                        lambda function: compiled.append(function.__name__) or function)
    x, grad_spikes = _drive((MAX_RECOMPUTE_STEPS + 1, 2, 30), torch.float32, "cpu")
    _compare_with_reference(x, grad_spikes, LIFParams(detach_reset=False), "auto")
    assert compiled == [], f"compiled for {MAX_RECOMPUTE_STEPS + 1} steps: {compiled}"
    x, grad_spikes = _drive((MAX_RECOMPUTE_STEPS, 2, 30), torch.float32, "cpu")
    _compare_with_reference(x, grad_spikes, LIFParams(detach_reset=False), "auto")
    assert compiled == ["_forward_torch", "_backward_torch"], compiled


def test_multistep_starts_from_rest_each_call():
    lif = LIF(backend="auto")
    x = torch.full((3, 4), 0.9)
    assert_equal(lif(x), lif(x), "two calls on the same input")


def test_adopt_takes_a_twin_neurons_spikes_and_refuses_others():
    leader, twin = LIF(), LIF()
    seen = []
    twin.register_spike_hook(lambda lif, spikes, multistep: seen.append((lif, spikes, multistep)))
    x = torch.full((2, 3), 1.5)
    spikes = leader.step(x)
    assert twin.adopt(leader, spikes, multistep=False) is spikes
    assert twin.v is leader.v and seen == [(twin, spikes, False)]
    assert_equal(twin.step(x), leader.step(x), "the twin continues from the shared membrane")
    with pytest.raises(ValueError, match="different neuron"):
        LIF(tau=2.0).adopt(leader, spikes, multistep=False)
    with pytest.raises(ValueError, match="different neuron"):
        LIF(backend="torch").adopt(leader, spikes, multistep=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(tau=1.0), "tau=1.0"),
    (dict(tau=0.5), "tau=0.5"),
    (dict(surrogate="relu"), "surrogate='relu'"),
    (dict(backend="cuda"), "backend='cuda'"),
    (dict(alpha=-1.0), "alpha=-1.0"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        LIF(**kwargs)


def test_input_without_time_dimension():
    with pytest.raises(ValueError, match=r"time-major input \[T, \.\.\.\]"):
        LIF()(torch.randn(7))
    with pytest.raises(ValueError, match="dtype"):
        LIF()(torch.ones(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="float64 only with backend='torch'"):
        LIF()(torch.ones(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="float64 only with backend='torch'"):
        LIF().step(torch.ones(3, 4, dtype=torch.float64))


def test_reference_runs_float64():
    x = torch.full((3, 1), 1.2, dtype=torch.float64)  # h = v + (x - v) / tau, tau = 4/3:
    spikes = LIF(tau=4.0 / 3.0, backend="torch")(x)  # 0.9; 0.9 + 0.225 = 1.125 fires; 0.9
    assert spikes.dtype == torch.float64 and spikes.flatten().tolist() == [0.0, 1.0, 0.0]


def test_torch_compile_traces_without_graph_breaks(device):
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), LIF(backend="triton"),
                                torch.nn.Linear(8, 2)).to(device)
    x = torch.randn(4, 3, 6, device=device)
    expected = model(x)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    assert_close(out, expected, 1e-6, 1e-6, "compiled output")
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("training, dtype", [(False, torch.float32), (True, torch.float32),
                                             (True, torch.bfloat16)])
def test_torch_compile_on_the_cpu_traces_the_neuron(training, dtype):
    """On the CPU torch.compile traces the neuron's torch ops into its graph (so that inductor
    fuses them with their neighbours), and in training its surrogate backward too, instead of
    calling the opaque op: same spikes, same gradients as eager. Half precision keeps the op
    (inductor could skip the rounding of a half-precision input it fuses)."""
    graphs = []

    def backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), LIF(), torch.nn.Linear(8, 2)).to(dtype)
    x = torch.randn(4, 3, 6, dtype=dtype) * 3
    compiled = torch.compile(model, fullgraph=True, backend=backend)
    with torch.set_grad_enabled(training):
        outputs = [run(x) for run in (model, compiled)]
    assert_equal(outputs[1], outputs[0], "compiled output")
    targets = {str(node.target) for node in graphs[-1].graph.nodes}
    opaque = any("lif_forward" in target for target in targets)
    assert opaque == (dtype != torch.float32), targets
    if training:
        gradients = []
        for output in outputs:
            model.zero_grad()
            output.square().sum().backward()
            gradients.append([p.grad.clone() for p in model.parameters()])
        for eager, traced in zip(*gradients):
            assert_close(traced, eager, 1e-6, 1e-6, "compiled gradient")
        assert gradients[0][0].abs().max() > 0, "gradients should reach the first layer"


@pytest.mark.slow
@pytest.mark.parametrize("implementation", ["compiled", "triton"])
def test_eager_path_equals_the_custom_op(implementation, device):
    # Eager calls bypass the dispatcher (kernels.lif.ops._EagerLIF); torch.compile traces the
    # custom op. Both must compute the same, and the op must pass torch.library's checks.
    from snnzoo.kernels.lif import ops
    if implementation == "compiled" and device.type == "cuda":
        pytest.skip("the compiled torch path serves CPU tensors")
    x, grad_spikes = _drive((4, 3, 33), torch.float32, device)
    v_in = torch.full((3, 33), 0.25, device=device)
    arguments = (*LIFParams(v_reset=None).as_op_args(), True, implementation)
    results = []
    for run in (ops._lif_forward_op, ops._EagerLIF.apply):
        x_in, v = x.clone().requires_grad_(), v_in.clone().requires_grad_()
        spikes, _, v_out = run(x_in, v, *arguments)
        torch.autograd.backward((spikes, v_out), (grad_spikes, torch.ones_like(v_out)))
        results.append((spikes, v_out, x_in.grad, v.grad))
    for what, a, b in zip(("spikes", "v_out", "dL/dx", "dL/dv_in"), *results):
        assert_equal(a, b, f"eager path vs custom op: {what}")
    torch.library.opcheck(ops._lif_forward_op, (x.clone().requires_grad_(),
                                                v_in.clone().requires_grad_(), *arguments))


@pytest.mark.parametrize("implementation", ["compiled", "triton"])
def test_custom_op_fake_matches_time_innermost_layout(implementation, device):
    # An input stored with time innermost ([B, N, T] permuted to [T, B, N]) flattens to a
    # [T, N] view with strides (1, T). The op returns contiguous spikes; its fake claimed x's
    # strides, so inductor's stride assertion failed on the compiled model.
    from snnzoo.kernels.lif import ops
    from snnzoo.kernels._layout import flatten_in_memory_order
    if implementation == "compiled" and device.type == "cuda":
        pytest.skip("the compiled torch path serves CPU tensors")
    x, _ = _drive((3, 5, 4), torch.float16, device)  # [B, N, T]
    flat, _ = flatten_in_memory_order(x.permute(2, 0, 1))
    assert flat.stride() == (1, 4), "the test needs a time-innermost view"
    arguments = (*LIFParams().as_op_args(), False, implementation)
    torch.library.opcheck(ops._lif_forward_op, (flat, None, *arguments),
                          test_utils=("test_faketensor",))


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch):
    from snnzoo.kernels import _compiled

    def failing_compile(function):
        def compiled(*args):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setenv("SNNZOO_COMPILE_CPU", "1")
    monkeypatch.setattr(_compiled, "_compile_failure", None)
    monkeypatch.setattr(_compiled, "_compiled", failing_compile)
    x, grad_spikes = _drive((5, 3, 41), torch.float32, "cpu")
    with pytest.warns(RuntimeWarning, match="compiling a CPU path .* no C.. compiler") as caught:
        spikes, grad_x = _spikes_and_grad(x, grad_spikes, LIFParams(), "auto")
    assert len(caught) == 1, [str(warning.message) for warning in caught]
    assert "no C++ compiler" in _compiled._compile_failure
    ref_spikes, ref_grad_x = _spikes_and_grad(x, grad_spikes, LIFParams(), "torch")
    assert_equal(spikes, ref_spikes, "spikes after the fallback")
    assert_close(grad_x, ref_grad_x, 1e-5, 1e-5, "dL/dx after the fallback")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _spikes_and_grad(x, grad_spikes, LIFParams(), "auto")


def _fails_eagerly_too(x):
    raise MemoryError("the call's own error")


def test_an_error_of_the_call_itself_leaves_compiling_on(monkeypatch):
    # An error that the eager call raises too (a tensor on another device, out of memory)
    # switched compiling off for the whole process, with a warning blaming the compiler.
    from snnzoo.kernels import _compiled
    monkeypatch.setenv("SNNZOO_COMPILE_CPU", "1")
    monkeypatch.setattr(_compiled, "_compile_failure", None)
    monkeypatch.setattr(_compiled, "_compiled", lambda function: function)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MemoryError, match="the call's own error"):
            _compiled.run_compiled(_fails_eagerly_too, torch.ones(2))
    assert _compiled._compile_failure is None and _compiled.compiling_enabled()


@pytest.mark.slow
def test_compiled_cpu_neuron_resets_to_each_ones_own_v_reset(tmp_path):
    # torch 2.14's FX graph cache handed the graph compiled for one v_reset to neurons with
    # another, within a process and across processes sharing the cache: run it in a fresh one.
    code = """
import torch
from snnzoo.layers import LIF
x = torch.tensor([[10.0], [1.9]])  # fires at t=0; at t=1 only if the reset left v at 0.2
for v_reset in (0.2, -0.5):
    stepped = LIF(v_reset=v_reset)
    stepped.step(torch.tensor([10.0]))
    print(v_reset, stepped.v.item(), LIF(v_reset=v_reset)(x).flatten().tolist(),
          LIF(v_reset=v_reset, backend="torch")(x).flatten().tolist())
"""
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),
           "SNNZOO_COMPILE_CPU": "1", "TRITON_INTERPRET": "1"}
    for run in range(2):  # a cold cache, then a warm one
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        lines = [line.split(" ", 2) for line in done.stdout.strip().splitlines()]
        for v_reset, membrane, compiled_and_reference in lines:
            compiled, reference = compiled_and_reference.split("] [")
            assert compiled + "]" == "[" + reference, f"run {run}, v_reset {v_reset}: {lines}"
            assert math.isclose(float(membrane), float(v_reset), rel_tol=1e-6), lines
        assert [line[2] for line in lines] == ["[1.0, 1.0] [1.0, 1.0]", "[1.0, 0.0] [1.0, 0.0]"]


def test_neuron_constants_are_attributes_checked_when_set():
    lif = LIF()
    x = torch.full((3, 4), 0.9)
    assert (lif.tau, lif.v_threshold, lif.v_reset, lif.surrogate, lif.alpha) == (
        4.0 / 3.0, 1.0, 0.0, "atan", 2.0)
    assert lif(x).sum() == 0
    lif.v_threshold = 0.5  # as with SpikingJelly's LIFNode: it takes effect
    assert_equal(lif(x), lif_multistep_reference(x, LIFParams(v_threshold=0.5)), "spikes")
    assert "v_threshold=0.5" in repr(lif)
    with pytest.raises(ValueError, match="tau=0.5 is invalid"):
        lif.tau = 0.5
    with pytest.raises(AttributeError, match="immutable .*lif.tau = "):
        lif.params.tau = 0.5
    assert lif.tau == 4.0 / 3.0
    lif.surrogate = "sigmoid"  # with its own default sharpness
    assert lif.alpha == 4.0
    import numpy
    assert LIF(tau=numpy.float32(2.0)).tau == LIF(tau=torch.tensor(2.0)).tau == 2.0
    with pytest.raises(ValueError, match="tau='2' must be a real number"):
        LIF(tau="2")


def test_inputs_without_a_step_are_clear_errors():
    with pytest.raises(ValueError, match="LIF.step expects .* got a 0-d tensor"):
        LIF().step(torch.tensor(2.0))
    for backend in ("auto", "torch"):
        with pytest.raises(ValueError, match="a sequence of 0 timesteps"):
            LIF(backend=backend)(torch.ones(0, 4))
