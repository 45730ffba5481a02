"""tests/nir_reference.py, the numpy NIR interpreter the export tests check against, on small
graphs whose results are worked out by hand; the numbers are written out here."""

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from nir_reference import simulate  # noqa: E402

DT = 0.5  # seconds; with tau = 2 * DT each Euler step moves v half way: dt / tau = 0.5


def one(shape, value):
    return np.full(shape, value, dtype=np.float64)


def chain(*nodes, shape, type_check=True):
    """input -> nodes[0] -> nodes[1] -> ... -> output, the nodes named n0, n1, ..."""
    named = {"input": nir.Input(input_type={"input": np.array(shape)})}
    named.update({f"n{i}": node for i, node in enumerate(nodes)})
    out_type = nodes[-1].output_type["output"]
    named["output"] = nir.Output(output_type={"output": np.array(out_type)})
    names = list(named)
    return nir.NIRGraph(nodes=named, edges=list(zip(names, names[1:])), type_check=type_check)


def run(graph, values, dt=DT):
    """values [T, *shape] for one sample: the result with a batch of 1."""
    return simulate(graph, np.asarray(values, dtype=np.float64)[:, None], dt)


def test_lif_constant_current_spikes_every_second_step():
    # tau = 2 dt, r = 1, v_leak = 0, threshold 1, I = 1.5:
    # v1 = 0 + 0.5 * (0 - 0 + 1.5) = 0.75; v2 = 0.75 + 0.5 * (-0.75 + 1.5) = 1.125 > 1:
    # spike, v = 0; then again 0.75, 1.125 ...
    lif = nir.LIF(tau=one(1, 2 * DT), r=one(1, 1), v_leak=one(1, 0), v_threshold=one(1, 1))
    result = run(chain(lif, shape=[1]), one((6, 1), 1.5))
    assert result["spikes"]["n0"][:, 0, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert np.array_equal(result["output"], result["spikes"]["n0"])
    # I = 1 only approaches 1 (0.5, 0.75, 0.875, ...) and never exceeds it: no spike
    assert run(chain(lif, shape=[1]), one((8, 1), 1.0))["spikes"]["n0"].sum() == 0


def test_lif_leak_reset_and_threshold_per_neuron():
    # two neurons: v_leak 0.5 (starts there), v_reset -1; r = 2; threshold 0.9 and 2
    lif = nir.LIF(tau=one(2, 2 * DT), r=one(2, 2), v_leak=one(2, 0.5),
                  v_threshold=np.array([0.9, 2.0]), v_reset=one(2, -1))
    # input 0.5: v1 = 0.5 + 0.5 * (0 + 1) = 1.0 (> 0.9: neuron 0 spikes, v = -1);
    # neuron 0: v2 = -1 + 0.5 * (1.5 + 1) = 0.25; v3 = 0.25 + 0.5 * (0.25 + 1) = 0.875 (no)
    # neuron 1: v -> 1.0, 1.25, 1.375 (tends to 1.5 < 2: never)
    spikes = run(chain(lif, shape=[2]), one((3, 2), 0.5))["spikes"]["n0"][:, 0]
    assert spikes.tolist() == [[1, 0], [0, 0], [0, 0]]


def test_li_starts_at_v_leak_and_integrates():
    # v0 = v_leak = 1; no input: stays 1. Input 2 with r = 0.5, tau = 2 dt:
    # v = 1 + 0.5 * (1 - 1 + 1) = 1.5, then 1.5 + 0.5 * (-0.5 + 1) = 1.75
    li = nir.LI(tau=one(1, 2 * DT), r=one(1, 0.5), v_leak=one(1, 1))
    graph = chain(li, shape=[1])
    assert run(graph, one((3, 1), 0))["potentials"]["n0"][:, 0, 0].tolist() == [1, 1, 1]
    assert run(graph, one((2, 1), 2))["output"][:, 0, 0].tolist() == [1.5, 1.75]


def test_if_integrates_dt_r_i_and_fires_strictly_above():
    # "dv/dt = R I": v += dt * r * I = 0.5 per step: 0.5, 1.0 (not > 1), 1.5 spike -> 0
    node = nir.IF(r=one(1, 1), v_threshold=one(1, 1))
    spikes = run(chain(node, shape=[1]), one((6, 1), 1))["spikes"]["n0"][:, 0, 0]
    assert spikes.tolist() == [0, 0, 1, 0, 0, 1]
    integrator = nir.I(r=one(1, 4))  # v += 0.5 * 4 * 1
    assert run(chain(integrator, shape=[1]), one((3, 1), 1))["output"].ravel().tolist() == [2, 4, 6]


def test_cuba_current_reaches_v_one_step_later():
    # tau_syn = tau_mem = 2 dt, r = 1, w_in = 1, input 1 every step; forward Euler from the
    # previous state: I = 0.5, 0.75, 0.875, 0.9375, 0.96875, ...
    # v[t] = v[t-1] + 0.5 * (-v[t-1] + I[t-1]): 0, 0.25, 0.5, 0.6875, 0.8125
    params = dict(tau_syn=one(1, 2 * DT), tau_mem=one(1, 2 * DT), r=one(1, 1), v_leak=one(1, 0))
    v = run(chain(nir.CubaLI(**params), shape=[1]), one((5, 1), 1))["output"].ravel()
    assert v.tolist() == [0, 0.25, 0.5, 0.6875, 0.8125]
    # threshold 0.6: spike at step 3 (v 0.6875), v = 0; step 4: 0.5 * 0.9375 = 0.46875;
    # step 5: 0.46875 + 0.5 * (-0.46875 + 0.96875) = 0.71875: spike
    lif = nir.CubaLIF(**params, v_threshold=one(1, 0.6))
    spikes = run(chain(lif, shape=[1]), one((6, 1), 1))["spikes"]["n0"].ravel()
    assert spikes.tolist() == [0, 0, 0, 1, 0, 1]
    # w_in scales the input: w_in = 2 doubles I and so v (no threshold crossed below 1.2)
    v2 = run(chain(nir.CubaLI(**params, w_in=2.0), shape=[1]), one((3, 1), 1))["output"].ravel()
    assert v2.tolist() == [0, 0.5, 1.0]


def test_delay_of_two_steps():
    # y(t) = x(t - 2 dt): 0 until the first input arrives
    delay = nir.Delay(delay=one(1, 2 * 0.001))
    out = run(chain(delay, shape=[1]), [[1], [2], [3], [4], [5]], dt=0.001)["output"].ravel()
    assert out.tolist() == [0, 0, 1, 2, 3]
    # per element: 0, 1 and 3 steps
    delay = nir.Delay(delay=np.array([0.0, 1.0, 3.0]))
    x = np.arange(1, 13, dtype=float).reshape(4, 3)  # rows: [1 2 3] [4 5 6] [7 8 9] [10 11 12]
    out = run(chain(delay, shape=[3]), x, dt=1.0)["output"][:, 0]
    assert out.tolist() == [[1, 0, 0], [4, 2, 0], [7, 5, 0], [10, 8, 3]]


def test_delay_must_be_whole_steps():
    with pytest.raises(ValueError, match="whole number of steps"):
        run(chain(nir.Delay(delay=one(1, 1.5)), shape=[1]), one((2, 1), 1), dt=1.0)


X33 = np.arange(1, 10, dtype=float).reshape(1, 3, 3)  # [[1 2 3] [4 5 6] [7 8 9]]
W22 = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])  # [C_out=1, C_in=1, 2, 2]


def conv(weight, bias, **kw):
    args = dict(stride=1, padding=0, dilation=1, groups=1) | kw
    return nir.Conv2d(input_shape=(3, 3), weight=weight, bias=np.array(bias, float), **args)


def conv_out(node, x=X33, type_check=True):
    graph = chain(node, shape=list(x.shape), type_check=type_check)
    return run(graph, x[None])["output"][0, 0]


def test_conv2d_2x2():
    # out[i, j] = 1 x[i, j] + 2 x[i, j+1] + 3 x[i+1, j] + 4 x[i+1, j+1] + bias 1
    # (0,0): 1 + 4 + 12 + 20 = 37; (0,1): 2 + 6 + 15 + 24 = 47; (1,0): 67; (1,1): 77
    assert conv_out(conv(W22, [1.0])).tolist() == [[[38, 48], [68, 78]]]


def test_conv2d_stride_padding_dilation_same():
    # padding 1, stride 2: windows of the zero-padded 5x5 at rows/columns 0 and 2:
    # [[0 0] [0 1]] -> 4; [[0 0] [2 3]] -> 6 + 12 = 18; [[0 4] [0 7]] -> 8 + 28 = 36;
    # [[5 6] [8 9]] -> 5 + 12 + 24 + 36 = 77
    assert conv_out(conv(W22, [0.0], stride=2, padding=1)).tolist() == [[[4, 18], [36, 77]]]
    # dilation 2: taps x[0,0], x[0,2], x[2,0], x[2,2]: 1 + 6 + 21 + 36 = 64
    assert conv_out(conv(W22, [0.0], dilation=2)).tolist() == [[[64]]]
    # 'same' (as torch: the one row and column of padding go after the input): the last
    # column sees zeros on its right, the last row below: (0,2) = 1 * 3 + 3 * 6 = 21;
    # (1,2) = 6 + 3 * 9 = 33; (2,0) = 7 + 2 * 8 = 23; (2,1) = 8 + 2 * 9 = 26; (2,2) = 9
    same = conv_out(conv(W22, [0.0], padding="same"))
    assert same.tolist() == [[[37, 47, 21], [67, 77, 33], [23, 26, 9]]]


def test_conv2d_groups():
    # two channels, groups 2, 1x1 kernels 2 and 3: each channel scaled on its own. (nir
    # 1.0.8 types a Conv2d's input with weight.shape[1] channels, C_in / groups, so a grouped
    # convolution fails its type check: built here without it.)
    x = np.stack([X33[0], -X33[0]])
    node = nir.Conv2d(input_shape=(3, 3), weight=np.array([2.0, 3.0]).reshape(2, 1, 1, 1),
                      stride=1, padding=0, dilation=1, groups=2, bias=np.zeros(2))
    out = conv_out(node, x, type_check=False)
    assert np.array_equal(out[0], 2 * X33[0]) and np.array_equal(out[1], -3 * X33[0])


def test_conv1d():
    # x = [1 2 3 4], kernel [1 -1], padding 1: [0-1, 1-2, 2-3, 3-4, 4-0] = [-1 -1 -1 -1 4]
    node = nir.Conv1d(input_shape=4, weight=np.array([[[1.0, -1.0]]]), stride=1, padding=1,
                      dilation=1, groups=1, bias=np.zeros(1))
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    out = run(chain(node, shape=[1, 4]), x)["output"].ravel()
    assert out.tolist() == [-1, -1, -1, -1, 4]


def pool(kind, kernel, stride, padding):
    return kind(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding))


def pool_graph(node, shape):
    # pooling nodes leave their types to the graph's inference: give them explicitly
    named = {"input": nir.Input(input_type={"input": np.array(shape)}), "pool": node,
             "output": nir.Output(output_type={"output": None})}
    return nir.NIRGraph(nodes=named, edges=[("input", "pool"), ("pool", "output")])


def test_avgpool_padding_counts_in_the_divisor():
    # [[1 2] [3 4]], kernel 2, stride 2, padding 1: each window holds one element and three
    # zeros, divided by 4 (torch's count_include_pad=True): 0.25, 0.5, 0.75, 1
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    graph = pool_graph(pool(nir.AvgPool2d, [2, 2], [2, 2], [1, 1]), [1, 2, 2])
    assert run(graph, x[None])["output"][0, 0].tolist() == [[[0.25, 0.5], [0.75, 1.0]]]
    # no padding, kernel 2 over the 3x3: means of [[1 2] [4 5]] ... = 3, 4, 6, 7
    graph = pool_graph(pool(nir.AvgPool2d, [2, 2], [1, 1], [0, 0]), [1, 3, 3])
    assert run(graph, X33[None])["output"][0, 0].tolist() == [[[3, 4], [6, 7]]]


def test_sumpool():
    # kernel 2, stride 1 over the 3x3: sums 12, 16, 24, 28
    graph = pool_graph(pool(nir.SumPool2d, [2, 2], [1, 1], [0, 0]), [1, 3, 3])
    assert run(graph, X33[None])["output"][0, 0].tolist() == [[[12, 16], [24, 28]]]


def test_flatten_indexes_the_per_sample_shape():
    x = np.arange(12, dtype=float).reshape(1, 2, 2, 3)  # one step, per sample [2, 2, 3]
    whole = nir.Flatten(input_type={"input": np.array([2, 2, 3])}, start_dim=0, end_dim=-1)
    out = run(chain(whole, shape=[2, 2, 3]), x)["output"]
    assert out.shape == (1, 1, 12) and out.ravel().tolist() == list(range(12))
    # start_dim 1 keeps the first per-sample axis: [2, 6] in C order
    rows = nir.Flatten(input_type={"input": np.array([2, 2, 3])}, start_dim=1, end_dim=-1)
    out = run(chain(rows, shape=[2, 2, 3]), x)["output"]
    assert out.shape == (1, 1, 2, 6) and out[0, 0, 1].tolist() == list(range(6, 12))


def test_linear_affine_scale_threshold_and_batch():
    w = np.array([[1.0, 2.0], [3.0, 4.0], [-1.0, 0.0]])
    graph = chain(nir.Affine(weight=w, bias=np.array([0.5, 0.0, 0.0])),
                  nir.Scale(scale=np.array([1.0, 0.5, 2.0])),
                  nir.Threshold(threshold=one(3, 1.0)), shape=[2])
    x = np.array([[[1.0, 1.0], [0.0, -1.0]]])  # one step, a batch of two samples
    result = simulate(graph, x, DT)
    # sample 0: W x + b = [3.5, 7, -1] -> scaled [3.5, 3.5, -2] -> [1, 1, 0]
    # sample 1: [-1.5, -4, 0] -> [-1.5, -2, 0] -> [0, 0, 0]
    assert result["output"][0].tolist() == [[1, 1, 0], [0, 0, 0]]
    assert result["spikes"]["n2"][0].tolist() == [[1, 1, 0], [0, 0, 0]]
    linear = chain(nir.Linear(weight=w), shape=[2])
    assert simulate(linear, x, DT)["output"][0].tolist() == [[3, 7, -1], [-2, -4, 0]]


def feedback_graph(order):
    # y(t) = x(t) + 0.5 y(t - 1): "y" sums the input and the delayed, scaled y
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "y": nir.Scale(scale=one(1, 1)), "delay": nir.Delay(delay=one(1, DT)),
             "half": nir.Scale(scale=one(1, 0.5)),
             "output": nir.Output(output_type={"output": np.array([1])})}
    edges = [("input", "y"), ("y", "delay"), ("delay", "half"), ("half", "y"), ("y", "output")]
    return nir.NIRGraph(nodes={k: nodes[k] for k in order}, edges=edges, metadata={"dt": DT})


def test_feedback_cycle_through_a_delay():
    graph = feedback_graph(["input", "y", "delay", "half", "output"])
    impulse = simulate(graph, np.array([1.0, 0, 0, 0]).reshape(4, 1, 1))  # dt from metadata
    assert impulse["output"].ravel().tolist() == [1, 0.5, 0.25, 0.125]
    step = simulate(graph, one((4, 1, 1), 1))
    assert step["output"].ravel().tolist() == [1, 1.5, 1.75, 1.875]
    # the node order of the graph does not matter (nir.read sorts the nodes by name)
    shuffled = feedback_graph(["output", "half", "delay", "y", "input"])
    assert np.array_equal(simulate(shuffled, one((4, 1, 1), 1))["output"], step["output"])


def test_cycle_without_delay_is_refused():
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "a": nir.Scale(scale=one(1, 1)), "b": nir.Scale(scale=one(1, 0.5)),
             "output": nir.Output(output_type={"output": np.array([1])})}
    edges = [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    with pytest.raises(ValueError, match=r"cycle without a Delay.*: (a -> b -> a|b -> a -> b)"):
        simulate(graph, one((2, 1, 1), 1), DT)
    # a Delay of zero steps does not break a cycle either
    nodes["b"] = nir.Delay(delay=one(1, 0.0))
    with pytest.raises(ValueError, match="cycle without a Delay"):
        simulate(nir.NIRGraph(nodes=nodes, edges=edges), one((2, 1, 1), 1), DT)


def test_unknown_node_is_refused():
    nodes = {"input": nir.Input(input_type={"input": np.array([1])}),
             "mystery": nir.ir.graph.Identity(input_type={"input": np.array([1])}),
             "output": nir.Output(output_type={"output": np.array([1])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "mystery"), ("mystery", "output")],
                         type_check=False)
    with pytest.raises(NotImplementedError, match="'mystery'.*Identity"):
        simulate(graph, one((1, 1, 1), 1), DT)


def test_wrong_input_shape_is_refused():
    graph = chain(nir.Scale(scale=one(2, 1)), shape=[2])
    with pytest.raises(ValueError, match=r"expected \[T, B, \*\(2,\)\]"):
        simulate(graph, one((3, 1, 3), 1), DT)


def test_write_read_round_trip(tmp_path):
    # conv -> LIF -> flatten -> affine -> LIF, with a delayed recurrent edge on the last LIF
    rng = np.random.default_rng(0)
    shape = [1, 4, 4]
    nodes = {
        "input": nir.Input(input_type={"input": np.array(shape)}),
        "conv": nir.Conv2d(input_shape=(4, 4), stride=1, padding=1, dilation=1, groups=1,
                           weight=rng.normal(size=(2, 1, 3, 3)).astype(np.float32),
                           bias=np.zeros(2, np.float32)),
        "lif1": nir.LIF(tau=one([2, 4, 4], 2 * DT), r=one([2, 4, 4], 1), v_leak=one([2, 4, 4], 0),
                        v_threshold=one([2, 4, 4], 0.5)),
        "flat": nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(3, 32)), bias=np.full(3, 0.1)),
        "lif2": nir.LIF(tau=one(3, 4 * DT), r=one(3, 1), v_leak=one(3, 0), v_threshold=one(3, 1)),
        "delay": nir.Delay(delay=one(3, DT)),
        "rec": nir.Linear(weight=rng.normal(size=(3, 3))),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "fc"),
             ("fc", "lif2"), ("lif2", "delay"), ("delay", "rec"), ("rec", "lif2"),
             ("lif2", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": DT})
    x = rng.uniform(0, 2, size=(8, 2, *shape))
    before = simulate(graph, x)
    assert before["spikes"]["lif1"].shape == (8, 2, 2, 4, 4)
    assert before["spikes"]["lif1"].sum() > 0 and before["output"].sum() > 0
    nir.write(tmp_path / "graph.nir", graph)
    after = simulate(nir.read(tmp_path / "graph.nir"), x)
    for name in ("lif1", "lif2"):
        assert np.array_equal(after["spikes"][name], before["spikes"][name]), name
    assert np.array_equal(after["output"], before["output"])
