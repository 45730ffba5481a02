"""snnzoo.energy: synaptic operations and MACs counted by hand on a tiny network, a spike's
reach at the borders against the textbook count, and equality with SpikingJelly 2.0's
SynOpCounter and MACCounter on its SNASNet port with the same weights (benchmarks/energy.py)."""

import math
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from timm.utils import reparameterize_model
from torch import nn

import snnzoo
from snnzoo.energy import EnergyCosts, EnergyCounter, conv_synops, spike_counts
from snnzoo.evaluate import evaluate
from snnzoo.validate import main as validate_main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

# Per image, of the network _all_firing builds: width 2, 1 x 8 x 8 images, T = 2, every neuron
# firing at every step. A 3x3 convolution with padding 1 reads an input row position from
# 2, 3, 3, 3, 3, 3, 3, 2 output rows on 8 rows (22 in all), and 2, 3, 3, 2 on 4 (10): a spike
# reaches 22 x 22 = 484 output positions summed over an 8 x 8 map, 100 over 4 x 4 (a 1x1
# convolution: 64 and 16). The fused transition's 4x4 convolution of stride 2 and padding 1
# reads a row position from 1, 2, 2, 2, 2, 2, 2, 1 of its 4 output rows (14): 196.
HAND_SYNOPS = {
    # 2 in x 2 out channels x 484 per step, 2 steps
    "cell1.edges.0_1.conv": 2 * 2 * 484 * 2,       # 3872
    "cell1.edges.1_2.conv": 2 * 2 * 484 * 2,
    "cell1.edges.0_3.conv": 2 * 2 * 64 * 2,        # 1x1: 512
    "cell1.edges.2_3.conv": 2 * 2 * 484 * 2,
    "cell1.edges.2_0.conv": 2 * 2 * 484 * 1,       # feedback: the last step's is skipped
    "transition.2": 2 * 4 * 484 * 2,               # 2 -> 4 channels at 8 x 8: 7744
    "cell2.edges.0_1.conv": 4 * 4 * 100 * 2,       # 3200
    "cell2.edges.1_2.conv": 4 * 4 * 100 * 2,
    "cell2.edges.0_3.conv": 4 * 4 * 16 * 2,        # 512
    "cell2.edges.2_3.conv": 4 * 4 * 100 * 2,
    "cell2.edges.2_0.conv": 4 * 4 * 100 * 1,
    "fc": 3 * 2 * 2,                               # 3 spikes x 2 outputs, 2 steps
}
HAND_MACS = {
    "stem.0": 2 * 8 * 8 * 9,                       # 2 x 8 x 8 outputs of 1 x 3 x 3, once: 1152
    "pre_fc": 16 * 3 * 2,                          # 4 channels x 2 x 2 in, 3 out, 2 steps: 96
}
HAND_ANN_MACS = {  # dense, once (T = 1), padding included, no feedback convolution
    "stem.0": 1152, "cell1.edges.0_1.conv": 2 * 2 * 9 * 64, "cell1.edges.1_2.conv": 2304,
    "cell1.edges.0_3.conv": 2 * 2 * 64, "cell1.edges.2_3.conv": 2304, "cell1.edges.2_0.conv": 0,
    "transition.2": 2 * 4 * 9 * 64, "cell2.edges.0_1.conv": 4 * 4 * 9 * 16,
    "cell2.edges.1_2.conv": 2304, "cell2.edges.0_3.conv": 4 * 4 * 16,
    "cell2.edges.2_3.conv": 2304, "cell2.edges.2_0.conv": 0, "pre_fc": 48, "fc": 6,
}
FUSED_TRANSITION = dict(synops=2 * 4 * 196 * 2, ann_macs=2 * 4 * 16 * 16)  # 4x4 conv, 4 x 4 out


@pytest.fixture(autouse=True, scope="module")
def eager_cpu_paths():
    """Counts do not depend on compiling snnzoo's CPU paths, which these few steps would wait
    for (the compiled paths are tested on their own)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SNNZOO_COMPILE_CPU", "0")
        yield


def _all_firing() -> nn.Module:
    """A tiny SNASNet whose every neuron fires at every step: each BatchNorm outputs 10
    whatever its input (weight 0, bias 10), the cells' nodes sum such outputs, and pre_fc sums
    its 16 pooled inputs, all 1 (weight 1). LIF: v = v + (x - v) / tau crosses 1 for x >= 4/3."""
    model = snnzoo.create_model("snasnet_fmnist", width=2, img_size=8, classifier_width=3,
                                num_classes=2, neurons_per_class=1, timesteps=2).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.zero_()
                module.bias.fill_(10.0)
        model.pre_fc.weight.fill_(1.0)
    return model


def _count(model, images) -> EnergyCounter:
    with torch.no_grad(), EnergyCounter(model) as counter:
        model(images)
    return counter


@pytest.mark.parametrize("variant", ["by step", "all steps at once", "fused"])
def test_counts_by_hand(variant):
    model = _all_firing()
    if variant == "all steps at once":
        model.set_by_step(False)
    elif variant == "fused":  # BatchNorms folded, the transition's pool folded into a 4x4 conv
        model = reparameterize_model(model)
    images = 2
    counter = _count(model, torch.randn(images, 1, 8, 8))
    synops = dict(HAND_SYNOPS)
    ann_macs = dict(HAND_ANN_MACS)
    if variant == "fused":
        synops["transition.2"] = FUSED_TRANSITION["synops"]
        ann_macs["transition.2"] = FUSED_TRANSITION["ann_macs"]
    assert counter.images == images
    assert counter.synops == {name: images * synops.get(name, 0) for name in counter.synops}
    assert counter.macs == {name: images * HAND_MACS.get(name, 0) for name in counter.macs}
    assert counter.ann_macs == ann_macs
    report = counter.report(EnergyCosts(ac_pj=1.0, mac_pj=10.0))
    assert report["synops"] == sum(synops.values())  # 33532 unfused
    assert report["macs"] == 1248
    assert report["energy_pj"] == sum(synops.values()) + 10 * 1248
    assert report["ann_energy_pj"] == 10 * sum(ann_macs.values())  # 20150 MACs unfused
    assert report["layers"]["transition.2"]["input_firing_rate"] == 1.0
    assert report["layers"]["stem.0"]["input_firing_rate"] is None


@pytest.mark.parametrize("kernel, stride, padding, dilation, groups", [
    (3, 1, 1, 1, 1), (1, 1, 0, 1, 1), (4, 2, 1, 1, 1), (3, 2, 0, 1, 2), (3, 1, 2, 2, 1),
    ((3, 1), (2, 1), (1, 0), 1, 1)])
def test_a_spike_reaches_what_the_convolution_reads(kernel, stride, padding, dilation, groups):
    """The accumulates of a convolution on spikes are those of a dense convolution with a
    kernel of ones: each output adds one weight for each spike its window reads."""
    conv = nn.Conv2d(4, 6, kernel, stride, padding, dilation, groups, bias=False)
    spikes = (torch.rand(3, 4, 7, 9, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    expected = F.conv2d(spikes, torch.ones_like(conv.weight), None, stride, padding, dilation,
                        groups).sum()
    assert conv_synops(conv, spikes) == int(expected)


def test_one_spike_at_a_corner_an_edge_and_inside():
    conv = nn.Conv2d(1, 5, 3, padding=1, bias=False)
    for (row, column), reached in (((0, 0), 4), ((0, 3), 6), ((3, 3), 9)):
        spikes = torch.zeros(1, 1, 6, 6)
        spikes[0, 0, row, column] = 1.0
        assert conv_synops(conv, spikes) == 5 * reached, (row, column)


def test_evaluate_reports_energy_per_image():
    model = _all_firing()
    batches = [(torch.randn(3, 1, 8, 8), torch.tensor([0, 1, 0])),
               (torch.randn(1, 1, 8, 8), torch.tensor([1]))]
    result = evaluate(model, batches, torch.device("cpu"), "fp32", energy=True)
    energy = result["energy"]
    assert energy["images"] == result["images"] == 4
    assert energy["synops"] == sum(HAND_SYNOPS.values())
    assert energy["firing_rate"] == 1.0 and set(result["firing_rates"].values()) == {1.0}
    assert energy["ac_pj"] == 0.9 and energy["mac_pj"] == 4.6
    assert energy["energy_pj"] == pytest.approx(0.9 * 33532 + 4.6 * 1248)
    assert list(energy["layers"]) == ["stem.0", *list(HAND_SYNOPS)[:6], *list(HAND_SYNOPS)[6:11],
                                      "pre_fc", "fc"]


@pytest.mark.parametrize("costs, bad", [(dict(ac_pj=-1.0), "ac_pj=-1.0"),
                                        (dict(mac_pj=math.nan), "mac_pj=nan"),
                                        (dict(ac_pj="0.9"), "ac_pj='0.9'")])
def test_energy_costs_refuse_what_is_not_an_energy(costs, bad):
    with pytest.raises(ValueError, match=re.escape(bad)):
        EnergyCosts(**costs)


@pytest.mark.parametrize("option, value", [("--energy-ac-pj", "-1"), ("--energy-mac-pj", "inf"),
                                           ("--energy-mac-pj", "cheap")])
def test_validate_refuses_bad_energy_costs(option, value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        validate_main(["snasnet_fmnist", "--untrained", option, value,
                       "--json", str(tmp_path / "v.json")])
    assert exit_info.value.code == 2
    assert option in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "a file was written"


def test_what_cannot_be_counted_is_refused():
    with pytest.raises(TypeError, match="SNASNet"):
        EnergyCounter(nn.Sequential(nn.Conv2d(1, 1, 3)))
    model = _all_firing()
    with pytest.raises(ValueError, match="run the model"):
        EnergyCounter(model).report()
    for values, bad in (([0.0, 0.25, 1.0], "0.25"), ([0.5, 1.5], "0.5"), ([-1.0, 1.0], "-1.0")):
        with pytest.raises(ValueError, match=f"the input should be spikes .* holds {bad}"):
            spike_counts(torch.tensor([values]), 1)
    assert spike_counts(torch.tensor([[0.0, 1.0], [1.0, 1.0]]), 1).tolist() == [1, 2]
    model.transition[1] = nn.Identity()  # the transition's convolution now reads currents
    with pytest.raises(ValueError, match=r"the input of transition\.2 should be spikes .* holds 10"):
        _count(model, torch.randn(1, 1, 8, 8))


def test_synops_equal_spikingjelly_port():
    """SpikingJelly 2.0's SynOpCounter on its port of snasnet_cifar100 with the same weights,
    in float64, counts per layer what snnzoo counts, and on the feedback convolutions also
    the last step's, which the port computes and snnzoo skips; its MACCounter counts the
    stem's and pre_fc's MACs as snnzoo does."""
    pytest.importorskip("spikingjelly")
    from energy import build_networks, compare_counts, count_mismatches, sample_images

    rows = compare_counts(*build_networks(timesteps=3), sample_images(2))
    assert count_mismatches(rows) == []
    feedback = [name for name in rows if name.endswith("2_0.conv")]
    assert feedback and all(rows[name]["last_feedback_synops"] > 0 for name in feedback), \
        "the comparison of the last step's feedback is vacuous: no spike reached it"
    assert all(rows[name]["synops"] > 0 for name in rows if name not in ("stem.0", "pre_fc"))
    assert rows["stem.0"]["spikingjelly_macs"] == rows["stem.0"]["macs"] > 0


def test_energy_benchmark_smoke(capsys):
    """benchmarks/energy.py --smoke, in this process: its checks pass and it records nothing."""
    pytest.importorskip("spikingjelly")
    import energy

    before = energy.RESULT_FILE.stat().st_mtime_ns if energy.RESULT_FILE.exists() else None
    assert energy.main(["--smoke"]) == 0
    output = capsys.readouterr().out
    assert "MISMATCH" not in output and "SimpleEnergyProfiler" in output
    after = energy.RESULT_FILE.stat().st_mtime_ns if energy.RESULT_FILE.exists() else None
    assert before == after, "a --smoke run wrote its results"
