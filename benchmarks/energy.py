"""snnzoo.energy's counts beside SpikingJelly 2.0's op counters, on its SNASNet port with the
same weights and images.

    OMP_NUM_THREADS=1 python benchmarks/energy.py [--images 8] [--timesteps 5] [--smoke]
                                                  [--no-json]

The network is snasnet_cifar100 (SpikingJelly's port builds the CIFAR and Tiny ImageNet
networks at their own width only) with weights drawn by snnzoo.models.reference.excite, so
that every layer spikes, loaded into the port through snnzoo.convert's key map read in reverse
(authors_network; the port has the authors' module names). The images are the first of the
Fashion-MNIST sample embedded in snnzoo, padded to 32 x 32 and repeated over the three
channels: real pictures, as no CIFAR is shipped.

Two runs, both in eval mode:
  - float64, where rounding cannot move a membrane across the threshold, so the two networks
    spike alike: per layer, SpikingJelly's SynOpCounter must equal snnzoo's synaptic
    operations plus, on the feedback convolutions, those of the last step's feedback, which
    the port computes and snnzoo skips (it reaches no later step); its MACCounter must equal
    snnzoo's MACs of the stem and pre_fc. The exit status is 1 when a count differs (nothing is
    recorded then).
  - float32, as the models run: SimpleEnergyProfiler's report (MACs and accumulates by
    operation, memory bytes, its energy terms) beside snnzoo's estimate and the ANN's.

The results go to benchmarks/results/energy_spikingjelly.json, from which docs/energy.md's
comparison is generated (scripts/docs_tables.py). Without SpikingJelly (`pip install -e
".[bench]"`) the script says so in one line and exits 0.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, add_smoke_option, device_name, versions  # noqa: E402
from models import spikingjelly_network, spikingjelly_problem  # noqa: E402

import snnzoo  # noqa: E402
from snnzoo._files import write_json_atomically  # noqa: E402
from snnzoo.convert import authors_key_map, authors_network  # noqa: E402
from snnzoo.data import DATASETS  # noqa: E402
from snnzoo.data.fashion_mnist import read_fashion_mnist_sample  # noqa: E402
from snnzoo.energy import EnergyCounter, conv_synops, synaptic_layers  # noqa: E402
from snnzoo.models.reference import excite  # noqa: E402
from snnzoo.models.snasnet import MODEL_ARGS  # noqa: E402

MODEL = "snasnet_cifar100"
RESULT_FILE = RESULTS_DIR / "energy_spikingjelly.json"


def sample_images(count: int, dtype=torch.float32) -> torch.Tensor:
    """[count, 3, 32, 32]: the sample's first pictures, padded, in RGB, normalised as CIFAR-100."""
    pictures = torch.from_numpy(read_fashion_mnist_sample().images[:count]).to(dtype) / 255
    pictures = F.pad(pictures, (2, 2, 2, 2))[:, None].expand(-1, 3, -1, -1)
    info = DATASETS["cifar100"]
    mean = torch.tensor(info.mean, dtype=dtype).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=dtype).view(1, 3, 1, 1)
    return (pictures - mean) / std


def build_networks(timesteps: int):
    """(snnzoo's snasnet_cifar100 with excited weights, SpikingJelly's port with the same),
    both in eval mode, snnzoo's with the plain reference neuron (which computes in float64).
    The same weights in every run: the convolutions' initialisation is seeded."""
    torch.manual_seed(0)
    ours = snnzoo.create_model(MODEL, timesteps=timesteps)
    with torch.no_grad():
        excite(ours)
    ours = ours.set_backend("torch").eval()
    port = spikingjelly_network(MODEL, authors_network(ours), ours.genotype_spec,
                                {**MODEL_ARGS[MODEL], "timesteps": timesteps})
    return ours, port.eval()


def port_scopes(ours, port) -> dict[str, str]:
    """snnzoo layer name -> the port's module scope that SpikingJelly's counters record."""
    authors = {ours_prefix: theirs for theirs, ours_prefix
               in authors_key_map(ours.genotype_spec).items()}
    return {name: f"{type(port).__name__}.{authors[name + '.'].removesuffix('.')}"
            for name in synaptic_layers(ours)}


@torch.no_grad()
def snnzoo_counts(ours, images) -> tuple[EnergyCounter, dict[str, int]]:
    """(snnzoo's counter after ours(images), the synaptic operations of each feedback
    convolution on the last step's spikes: what a network computing it would add)."""
    last_spikes = {}

    def keep_last(name):
        def hook(lif, spikes, multistep):
            last_spikes[name] = spikes
        return hook

    feedback = [name for name, layer in synaptic_layers(ours).items() if not layer.in_ann]
    handles = [ours.get_submodule(name.rpartition(".")[0]).lif.register_spike_hook(keep_last(name))
               for name in feedback]  # each feedback convolution's edge neuron
    try:
        with EnergyCounter(ours) as counter:
            ours(images)
    finally:
        for handle in handles:
            handle.remove()
    last_feedback = {name: conv_synops(ours.get_submodule(name), spikes)
                     for name, spikes in last_spikes.items()}
    return counter, last_feedback


@torch.no_grad()
def spikingjelly_counts(port, images) -> tuple[dict, dict]:
    """(scope -> SynOps, scope -> MACs) of port(images), by SpikingJelly's own counters."""
    from spikingjelly.activation_based.op_counter import (DispatchCounterMode, MACCounter,
                                                          SynOpCounter)
    synops, macs = SynOpCounter(), MACCounter()
    with DispatchCounterMode([synops, macs]):
        port(images)
    return ({scope: sum(ops.values()) for scope, ops in synops.get_counts().items()},
            {scope: sum(ops.values()) for scope, ops in macs.get_counts().items()})


def compare_counts(ours, port, images: torch.Tensor) -> dict[str, dict]:
    """Per snnzoo layer, in float64: snnzoo's synops and macs, the last step's feedback
    synops it skips, and SpikingJelly's synops and macs on the port."""
    ours, port, images = ours.double(), port.double(), images.double()
    counter, last_feedback = snnzoo_counts(ours, images)
    their_synops, their_macs = spikingjelly_counts(port, images)
    return {name: dict(synops=counter.synops[name], macs=counter.macs[name],
                       last_feedback_synops=last_feedback.get(name, 0),
                       spikingjelly_synops=their_synops.get(scope, 0),
                       spikingjelly_macs=their_macs.get(scope, 0))
            for name, scope in port_scopes(ours, port).items()}


def count_mismatches(rows: dict[str, dict]) -> list[str]:
    """Where SpikingJelly's counts are not snnzoo's (plus the last step's feedback)."""
    problems = []
    for name, row in rows.items():
        expected = row["synops"] + row["last_feedback_synops"]
        if row["spikingjelly_synops"] != expected:
            problems.append(f"{name}: SpikingJelly counts {row['spikingjelly_synops']} SynOps, "
                            f"snnzoo {row['synops']} + {row['last_feedback_synops']} of the last "
                            f"step's feedback = {expected}")
        if row["macs"] and row["spikingjelly_macs"] != row["macs"]:
            problems.append(f"{name}: SpikingJelly counts {row['spikingjelly_macs']} MACs, "
                            f"snnzoo {row['macs']}")
    return problems


@torch.no_grad()
def energy_profiles(ours, port, images: torch.Tensor) -> dict:
    """In float32: SimpleEnergyProfiler's report on the port, snnzoo's on its own network."""
    from spikingjelly.activation_based.op_counter import SimpleEnergyProfiler

    ours, port, images = ours.float(), port.float(), images.float()
    with EnergyCounter(ours) as counter:
        ours(images)
    profiler = SimpleEnergyProfiler()
    profiler.bind_model(port)
    with profiler:
        port(images)
    report = profiler.get_report()
    per_image = len(images)

    def by_operation(counts):
        return {str(op).removeprefix("aten.").removesuffix(".default"): value / per_image
                for op, value in counts.get_counts().get("Global", {}).items() if value}

    cost = report.config.cost_config
    return dict(
        snnzoo=counter.report(),
        spikingjelly=dict(
            energy_pj=report.energy_total_pj / per_image,
            breakdown_pj={key: value / per_image for key, value in report.breakdown_pj.items()},
            counts={key: value / per_image for key, value in report.counts.items()},
            macs_by_operation=by_operation(profiler.mac_counter),
            accumulates_by_operation=by_operation(profiler.ac_counter),
            costs=dict(mac_pj=cost.e_mac_pj, ac_pj=cost.e_ac_pj,
                       memory_pj_per_byte=cost.e_memory_pj_per_byte)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_smoke_option(parser)
    parser.add_argument("--images", type=int, default=8, help="images (default: 8)")
    parser.add_argument("--timesteps", type=int, default=5, help="T (default: 5, the model's)")
    parser.add_argument("--no-json", action="store_true", help="print only, record nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        args.images, args.timesteps, args.no_json = 1, 2, True
    problem = spikingjelly_problem(MODEL, None)
    if problem:
        print(f"skipped: {problem}")
        return 0
    images = sample_images(args.images)
    ours, port = build_networks(args.timesteps)
    rows = compare_counts(ours, port, images)
    problems = count_mismatches(rows)
    print(f"{MODEL}, T = {args.timesteps}, {args.images} images, float64; per layer, all images:")
    print(f"  {'layer':22} {'snnzoo SynOps':>14} {'last feedback':>14} {'SpikingJelly':>14}")
    for name, row in rows.items():
        print(f"  {name:22} {row['synops']:>14,} {row['last_feedback_synops']:>14,} "
              f"{row['spikingjelly_synops']:>14,}")
    for line in problems:
        print(f"MISMATCH {line}")
    if problems:
        return 1
    profiles = energy_profiles(ours, port, images)
    ours, theirs = profiles["snnzoo"], profiles["spikingjelly"]
    print(f"float32, per image: snnzoo {ours['energy_pj'] / 1e6:.2f} uJ (ANN "
          f"{ours['ann_energy_pj'] / 1e6:.2f} uJ); SpikingJelly's SimpleEnergyProfiler "
          f"{theirs['energy_pj'] / 1e6:.2f} uJ, of which memory "
          f"{theirs['breakdown_pj']['memory_pj'] / 1e6:.2f} uJ")
    if not args.no_json:
        result = dict(model=MODEL, timesteps=args.timesteps, images=args.images,
                      device=device_name(torch.device("cpu")), versions=versions(),
                      spikingjelly_version=_spikingjelly_version(),
                      date=datetime.date.today().isoformat(), layers=rows, **profiles)
        write_json_atomically(RESULT_FILE, result)
        print(f"recorded in {RESULT_FILE}")
    return 0


def _spikingjelly_version() -> str:
    from importlib.metadata import version
    return version("spikingjelly")


if __name__ == "__main__":
    sys.exit(main())
