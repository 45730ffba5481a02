"""The training-free search: sampler and pruning as the authors', the score against the
authors' procedure, and python -m snnzoo.search end to end (resume, determinism, torchrun)."""

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snnzoo.convert import convert_state_dict
from snnzoo.data import first_batch, load_dataset
from snnzoo.models.reference import AuthorsSNASNet, excite
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet
from snnzoo.search import authors_score, draw_connection_matrix, prune, sample_genotypes, score
from snnzoo.search.__main__ import main as search_main

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--num-search", "8", "--width", "0.25", "--batch-size", "12", "--repeat", "1",
         "--timesteps", "2", "--seed", "3"]


def test_sampler_draws_as_the_authors():
    generator = torch.Generator().manual_seed(11)
    drawn = [draw_connection_matrix("backward", generator) for _ in range(20)]
    torch.manual_seed(11)  # the authors' connection_matrix_gen, from the global generator
    for matrix in drawn:
        upper = torch.triu(torch.randint(5, size=(4, 4)), diagonal=1)
        lower = torch.tril(torch.randint(5, size=(4, 4)), diagonal=-1)
        selection = torch.triu(torch.randint(2, size=(4, 4)), diagonal=1)
        assert torch.equal(matrix, selection * upper + (1 - selection.permute(1, 0)) * lower)
        for i in range(4):
            for j in range(i + 1, 4):
                assert not (matrix[i, j] and matrix[j, i]), "one direction per node pair"
    forward = draw_connection_matrix("forward", torch.Generator().manual_seed(0))
    assert torch.equal(forward, torch.triu(forward, diagonal=1))


def test_pruning_hand_cases():
    # node 2 receives from 0 but sends nowhere: removed; 0 -> 3 kept
    matrix = torch.tensor([[0, 3, 2, 1], [0, 0, 0, 4], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert prune(matrix).tolist() == [[0, 3, 0, 1], [0, 0, 0, 4], [0, 0, 0, 0], [0, 0, 0, 0]]
    # node 1 sends to 3 but is reached from nowhere: removed
    matrix = torch.tensor([[0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert prune(matrix).tolist() == [[0, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    # no direct input -> output edge: rejected
    assert prune(torch.tensor([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])) is None
    # a feedback edge 3 -> 1 counts as a path: node 1 reached from 0 only through it stays
    matrix = torch.tensor([[0, 0, 0, 2], [0, 0, 0, 3], [0, 0, 0, 0], [0, 1, 0, 0]])
    assert prune(matrix).tolist() == matrix.tolist()


def test_samples_are_pruned_and_seeded():
    first = list(sample_genotypes("backward", 30, seed=5))
    assert [str(g) for g in first] == [str(g) for g in sample_genotypes("backward", 30, seed=5)]
    assert all(g.matrix[0][3] for g in first)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("genotype, cell", [("0302 0030 3003 0000", "backward"),
                                            ("0314 0023 0004 0000", "forward")])
def test_score_equals_the_authors_procedure(genotype, cell, layout):
    images, _ = first_batch(load_dataset("fashion-mnist-sample", "train"), 48, seed=0)
    args = dict(MODEL_ARGS["snasnet_fmnist"], genotype=genotype, cell=cell, width=8)
    torch.manual_seed(0)
    reference = AuthorsSNASNet(**args)
    ours = SNASNet(**args)
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                            ours.state_dict().keys()))
    if layout == "channels_last":
        # As the search runs candidates on the CPU. NHWC convolutions round differently, and
        # in train mode batch statistics turn that into a few other spikes (scores then differ
        # by about 1e-5 relative), so this layout is compared in float64, where rounding
        # cannot move a membrane across the threshold, with the reference neuron.
        reference, ours = reference.double(), ours.double().set_backend("torch")
        ours.to(memory_format=torch.channels_last)
        images = images.double()
    torch.manual_seed(1)
    expected = authors_score(reference, images)
    torch.manual_seed(1)
    assert ours.training
    buffers = {name: buffer.clone() for name, buffer in ours.named_buffers()}
    value = score(ours, images)
    assert ours.training, "score leaves the model in the mode it was given"
    for name, buffer in ours.named_buffers():  # a train-mode pass moves them; score restores
        assert torch.equal(buffer, buffers[name]), f"score changed {name}"
    assert not torch.equal(reference.stem[1].running_mean, buffers["stem.1.running_mean"])
    assert math.isfinite(expected) and value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    ours.eval()
    score(ours, images)
    assert not ours.training


def test_eval_mode_score_counts_the_last_steps_feedback_neurons():
    # In eval mode the cell skips the convolution of its last step's feedback (it reaches no
    # later step) but still fires that edge's neuron, which the authors' score counts.
    images, _ = first_batch(load_dataset("fashion-mnist-sample", "train"), 24, seed=0)
    args = dict(MODEL_ARGS["snasnet_fmnist"], genotype="0302 0030 3003 0000", width=6)
    torch.manual_seed(0)
    reference = excite(AuthorsSNASNet(**args)).eval()
    ours = SNASNet(**args).eval()
    ours.load_state_dict(convert_state_dict(reference.state_dict(), ours.genotype_spec,
                                            ours.state_dict().keys()))
    expected = authors_score(reference, images)
    assert math.isfinite(expected)
    assert score(ours, images) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_score_skips_only_the_last_steps_feedback_convolutions_in_train_mode():
    from snnzoo.models.cells import spikes_only
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], genotype="0302 0030 3003 0000", width=4,
                           classifier_width=8))
    calls = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    images = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        model(images)
        everything = list(calls)
        calls.clear()
        with spikes_only(model):
            model(images)
    feedback = ["cell1.edges.2_0.conv", "cell2.edges.2_0.conv"]  # the only feedback edge, 2 -> 0
    assert all(everything.count(name) == model.timesteps for name in feedback)
    for name in set(everything):
        skipped = 1 if name in feedback else 0
        assert calls.count(name) == everything.count(name) - skipped, name
    assert model.training


def test_silent_network_scores_minus_infinity_with_a_warning():
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=2, classifier_width=4))
    with pytest.warns(RuntimeWarning):
        assert score(model.eval(), torch.zeros(4, 1, 28, 28)) == -math.inf


def _search(out, *extra, env=None):
    return search_main([*QUICK, "--out", str(out), *extra])


def _records(out):
    return [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]


def test_search_end_to_end_emits_a_registered_variant(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    assert _search(tmp_path / "run", "--name", "snasnet_test_winner") == 0
    out = tmp_path / "run"
    records = _records(out)
    assert len({r["genotype"] for r in records}) == len(records) and len(records) <= 8
    best = json.loads((out / "best.json").read_text())
    assert best["score"] == max(r["score"] for r in records)
    for name in ("scores.png", "cell.png", "snasnet_test_winner/config.json",
                 "snasnet_test_winner/README.md", "snasnet_test_winner/cell.png"):
        assert (out / name).is_file(), name
    assert (tmp_path / "variants" / "snasnet_test_winner" / "config.json").is_file()
    assert 'snnzoo.create_model("snasnet_test_winner")' in capsys.readouterr().out
    # a later process finds the variant through the variants directory: importing snnzoo reads
    # nothing from disk, snnzoo.create_model registers it on a first miss, and timm then knows it
    code = ("import snnzoo, timm; assert not timm.is_model('snasnet_test_winner'); "
            "m = snnzoo.create_model('snasnet_test_winner'); "
            "t = timm.create_model('snasnet_test_winner'); print(m.genotype, t.genotype)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "SNNZOO_VARIANTS_DIR": str(tmp_path / "variants")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:4] == best["genotype"].split()


def test_interrupted_search_resumes_without_loss_or_repeats(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    _search(tmp_path / "whole", "--name", "snasnet_whole")  # "parts" emits the default name
    whole = _records(tmp_path / "whole")

    from snnzoo.search import run
    original = run.score_candidate
    calls = []

    def interrupted_after_three(*args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(run, "score_candidate", interrupted_after_three)
    with pytest.raises(SystemExit) as stopped:
        _search(tmp_path / "parts")
    assert stopped.value.code == 130
    assert len(_records(tmp_path / "parts")) == 3
    with open(tmp_path / "parts" / "candidates.jsonl", "a") as handle:
        handle.write('{"index": 99, "genotype": "03')  # a line cut short by a kill
    with pytest.raises(SystemExit, match="--resume"):
        _search(tmp_path / "parts")
    monkeypatch.setattr(run, "score_candidate", original)
    scored = []
    monkeypatch.setattr(run, "score_candidate", lambda c, *a: scored.append(c.index) or original(c, *a))
    _search(tmp_path / "parts", "--resume")
    assert len(scored) == len(whole) - 3, "only the candidates not scored before"
    parts = _records(tmp_path / "parts")
    assert [(r["genotype"], r["score"]) for r in parts] == [(r["genotype"], r["score"]) for r in whole]
    assert json.loads((tmp_path / "parts" / "best.json").read_text())["genotype"] == \
        json.loads((tmp_path / "whole" / "best.json").read_text())["genotype"]
    with pytest.raises(SystemExit, match="seed was 3, now 4"):
        search_main([*QUICK[:-2], "--seed", "4", "--out", str(tmp_path / "parts"), "--resume"])


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path):
    # Neurons eager in every process: what is tested is how the processes share the work.
    env = {**os.environ, "SNNZOO_VARIANTS_DIR": str(tmp_path / "variants"), "OMP_NUM_THREADS": "1",
           "SNNZOO_COMPILE_CPU": "0"}
    single = subprocess.run([sys.executable, "-m", "snnzoo.search", *QUICK, "--out",
                             str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    double = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-addr", "127.0.0.1", "--master-port", port, "-m",
                             "snnzoo.search", *QUICK, "--out", str(tmp_path / "two"),
                             "--name", "snasnet_two"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert double.returncode == 0, double.stderr
    assert _records(tmp_path / "two") == [{**r, "seconds": s["seconds"]} for r, s in
                                          zip(_records(tmp_path / "one"), _records(tmp_path / "two"))]
    assert not list((tmp_path / "two").glob("candidates.rank*"))
    again = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                            "--master-addr", "127.0.0.1", "--master-port", port, "-m",
                            "snnzoo.search", *QUICK, "--out", str(tmp_path / "two"),
                            "--name", "snasnet_two"], env=env,
                           capture_output=True, text=True, timeout=300)
    # a refusal reaches every process, which all stop with it (not with a broken connection)
    assert again.returncode != 0
    assert again.stderr.count("holds a search already; pass --resume") == 2, again.stderr


def test_bad_options_are_clear_errors(capsys):
    with pytest.raises(SystemExit):
        search_main(["--width", "0"])
    assert "--width 0.0 must be a positive number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        search_main(["--name", "winner"])
    assert "must start with 'snasnet_'" in capsys.readouterr().err


def test_resume_keeps_the_memory_format_and_refuses_another(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    out = tmp_path / "run"
    _search(out, "--num-search", "2")  # on the CPU: channels_last by default
    settings = json.loads((out / "search.json").read_text())
    assert settings["channels_last"] is True
    with pytest.raises(SystemExit, match="channels_last was True, now False"):
        _search(out, "--num-search", "2", "--resume", "--no-channels-last")
    # a run recorded before the setting existed computed in the contiguous layout: resuming it
    # keeps that layout unless another is asked for
    del settings["channels_last"]
    (out / "search.json").write_text(json.dumps(settings))
    with pytest.raises(SystemExit, match="channels_last was False, now True"):
        _search(out, "--num-search", "2", "--resume", "--channels-last")
    _search(out, "--num-search", "2", "--resume")
    assert json.loads((out / "search.json").read_text())["channels_last"] is False
    (out / "search.json").write_text('{"dataset": "fashion-mnist-sample", ')  # cut short
    with pytest.raises(SystemExit, match="search.json is not valid JSON .* another --out"):
        _search(out, "--num-search", "2", "--resume")


def test_score_leaves_the_model_as_it_was_also_when_the_forward_fails():
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], genotype="0303 0030 2002 0200",
                           width=4, classifier_width=8))
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    calls = []

    def interrupt(lif, spikes, multistep):
        calls.append(1)
        if len(calls) == 7:  # mid-way through cell 1's steps, after BatchNorms moved
            raise KeyboardInterrupt

    from snnzoo.layers import LIF
    for lif in (m for m in model.modules() if isinstance(m, LIF)):
        lif.register_spike_hook(interrupt)
    with pytest.raises(KeyboardInterrupt):
        score(model, torch.rand(3, 1, 28, 28))
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, buffers[name]), f"score changed {name}"
    assert all(m.v is None for m in model.modules() if isinstance(m, LIF)), "a membrane leaked"
    assert not any(cell.spikes_only for cell in (model.cell1, model.cell2))
    with torch.inference_mode():  # buffers made in inference mode: eval-mode scoring moves none
        frozen = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=4, classifier_width=8)).eval()
    assert isinstance(score(frozen, torch.rand(3, 1, 28, 28)), float)  # no in-place restore


# ---------------------------------------------------------------- refused before any work

TINY = ["--num-search", "3", "--width", "0.125", "--batch-size", "16", "--repeat", "1",
        "--timesteps", "2"]


def _refused(capsys, argv, message):
    """search_main(argv) exits with an error matching message (argparse's or the run's)."""
    with pytest.raises(SystemExit) as stopped:
        search_main(argv)
    error = str(stopped.value.code) + capsys.readouterr().err
    assert stopped.value.code != 0 and __import__("re").search(message, error), error


def test_out_inside_the_variant_folder_is_refused_and_deletes_nothing(tmp_path, monkeypatch, capsys):
    variants = tmp_path / "variants"
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(variants))
    for out in (variants / "snasnet_here", variants / "snasnet_here" / "run"):
        out.mkdir(parents=True)
        (out / "keep.txt").write_text("results")
        _refused(capsys, [*TINY, "--name", "snasnet_here", "--out", str(out)],
                 "lies inside .*snasnet_here.* results would be deleted; choose an --out outside")
        assert [p.name for p in out.iterdir()] == ["keep.txt"], "nothing written, nothing deleted"
        assert (out / "keep.txt").read_text() == "results"


@pytest.mark.parametrize("name, message", [
    ("snasnet_cifar10", "is a built-in snnzoo model"),
    ("snasnet_a-b", "letters, digits and underscores"),
    ("snasnet_/../../victim2", "letters, digits and underscores"),
    ("snasnet_\u00e9t\u00e9", "letters, digits and underscores"),
])
def test_bad_names_are_refused_before_anything_is_written(tmp_path, monkeypatch, capsys, name,
                                                           message):
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    out = tmp_path / "a" / "b" / "run"
    _refused(capsys, [*TINY, "--name", name, "--out", str(out)], f"--name: .*{message}")
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_default_names_are_valid_variant_names():
    from snnzoo.models.variants import check_variant_name
    from snnzoo.search.__main__ import parse_args
    for seed, suffix in [("-1", "seed_minus1"), ("0", "seed0"), ("12", "seed12")]:
        args = parse_args(["--seed", seed])
        assert args.name == f"snasnet_fashion_mnist_sample_backward_{suffix}"
        check_variant_name(args.name)
    assert parse_args(["--dataset", "data/Bilder-\u00e4", "--cell", "forward"]).name == \
        "snasnet_bilder___forward_seed0"


@pytest.mark.parametrize("option, value, message", [
    ("--width", "nan", "--width nan must be a positive number"),
    ("--width", "inf", "--width inf must be a positive number"),
    ("--width", "-1", "--width -1.0 must be a positive number"),
    ("--seed", "100000000000000", "--seed 100000000000000 is out of range: .* use a seed between"),
    ("--seed", "-100000000000000", "--seed -100000000000000 is out of range"),
    ("--device", "gpu7", "argument --device: 'gpu7' is not a device"),
    ("--batch-size", "0", "--batch-size 0 must be at least 2 .the kernel compares images."),
    ("--batch-size", "1", "--batch-size 1 must be at least 2"),
])
def test_bad_numbers_are_refused_in_argument_parsing(tmp_path, capsys, option, value, message):
    _refused(capsys, [*TINY, option, value, "--out", str(tmp_path / "run")], message)
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_before_anything_is_written(tmp_path, capsys):
    _refused(capsys, [*TINY, "--device", "cuda", "--out", str(tmp_path / "run")],
             "argument --device: cuda but no CUDA GPU is visible here .* use --device cpu")
    assert not (tmp_path / "run").exists()


def test_the_seed_range_is_exactly_what_torch_accepts():
    from snnzoo.search.run import SEED_MULTIPLIER, check_seed
    num_search, repeat = 7, 3
    message = check_seed(10 ** 14, num_search, repeat)
    lowest, highest = (int(word) for word in message.split("between ")[1].split(" and "))
    assert check_seed(lowest, num_search, repeat) is None and check_seed(lowest - 1, num_search, repeat)
    assert check_seed(highest, num_search, repeat) is None and check_seed(highest + 1, num_search, repeat)
    torch.manual_seed(lowest * SEED_MULTIPLIER * 16)
    torch.manual_seed((highest * SEED_MULTIPLIER + num_search - 1) * 16 + repeat - 1)
    torch.manual_seed(0)


@pytest.mark.parametrize("dataset, message", [
    ("cifar-10", "^error: unknown data set 'cifar-10'; choose one of"),
    ("cifar10", "^error: CIFAR-10: not found. Searched:"),
])
def test_missing_or_unknown_data_is_a_one_line_error(tmp_path, dataset, message):
    with pytest.raises(SystemExit) as stopped:
        search_main([*TINY, "--dataset", dataset, "--data-dir", str(tmp_path / "data"),
                     "--out", str(tmp_path / "run")])
    assert __import__("re").search(message, str(stopped.value.code)), stopped.value.code
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- variant folders

def test_a_variant_folder_of_another_search_is_never_replaced(tmp_path, monkeypatch, capsys):
    variants = tmp_path / "variants"
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(variants))
    search_main([*TINY, "--name", "snasnet_taken", "--out", str(tmp_path / "first")])
    config = (variants / "snasnet_taken" / "config.json").read_text()
    # another search with the same name and other settings (which the default name does not
    # spell out) would write another winner
    for extra, differing in ((["--seed", "1"], "seed 0 (now 1)"),
                             (["--width", "0.25"], "width 0.125 (now 0.25)")):
        _refused(capsys, [*TINY, *extra, "--name", "snasnet_taken", "--out",
                          str(tmp_path / "second")],
                 re.escape(f"{variants / 'snasnet_taken'} holds a variant snasnet_taken that "
                           f"this search did not write (a search in {tmp_path / 'first'} with "
                           f"other settings: {differing}"))
        assert not (tmp_path / "second").exists()
    # the same settings elsewhere (make demo after rm -rf runs/demo) find the same winner
    search_main([*TINY, "--name", "snasnet_taken", "--out", str(tmp_path / "again")])
    assert (variants / "snasnet_taken" / "config.json").read_text() == config
    # a folder anyone else made is refused too
    (variants / "snasnet_hand_made").mkdir()
    _refused(capsys, [*TINY, "--name", "snasnet_hand_made", "--out", str(tmp_path / "third")],
             "snasnet_hand_made holds a variant")
    assert (variants / "snasnet_taken" / "config.json").read_text() == config
    # the run that wrote it may finish again
    search_main([*TINY, "--name", "snasnet_taken", "--out", str(tmp_path / "first"), "--resume"])
    assert (variants / "snasnet_taken" / "config.json").read_text() == config


def test_a_run_recorded_before_run_ids_resumes_over_its_own_folders(tmp_path, monkeypatch):
    from snnzoo.search.run import RUN_MARKER, SETTINGS
    variants = tmp_path / "variants"
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(variants))
    out = tmp_path / "old"
    search_main([*TINY, "--name", "snasnet_old", "--out", str(out)])
    settings = json.loads((out / SETTINGS).read_text())
    del settings["run_id"]  # as snnzoo wrote them before (make demo's runs/demo, say)
    (out / SETTINGS).write_text(json.dumps(settings))
    for folder in (out / "snasnet_old", variants / "snasnet_old"):
        (folder / RUN_MARKER).unlink()
    search_main([*TINY, "--name", "snasnet_old", "--out", str(out), "--resume"])
    assert (variants / "snasnet_old" / RUN_MARKER).is_file()
    assert "run_id" in json.loads((out / SETTINGS).read_text())


def test_every_candidate_minus_infinity_registers_nothing(tmp_path, monkeypatch):
    from snnzoo.search import run
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    monkeypatch.setattr(run, "score", lambda model, images: -math.inf)
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"all \d candidates scored -inf: .* nothing was registered"):
        search_main([*TINY, "--name", "snasnet_silent", "--out", str(out)])
    assert not (out / "best.json").exists() and not (out / "snasnet_silent").exists()
    assert not (tmp_path / "variants" / "snasnet_silent").exists()

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    records = [json.loads(line, parse_constant=refuse)
               for line in (out / "candidates.jsonl").read_text().splitlines()]
    assert records and [r["score"] for r in records] == [None] * len(records) and all(r["repeats"] == [None] for r in records)
    assert all(r["score"] == -math.inf for r in run.read_records(out).values())


def test_best_json_is_standard_json_when_some_candidates_score_minus_infinity(tmp_path, monkeypatch):
    from snnzoo.search import run
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    original = run.score
    calls = []
    monkeypatch.setattr(run, "score", lambda *a: -math.inf if calls.append(1) or len(calls) > 1
                        else original(*a))
    search_main([*TINY, "--name", "snasnet_partly", "--out", str(tmp_path / "run")])

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    best = json.loads((tmp_path / "run" / "best.json").read_text(), parse_constant=refuse)
    assert math.isfinite(best["score"]) and len(best["top"]) >= 2
    assert [r["score"] for r in best["top"]][1:] == [None] * (len(best["top"]) - 1)


def test_non_square_image_folders_are_refused(tmp_path, monkeypatch):
    from PIL import Image
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for k in range(10):
            Image.new("RGB", (48, 32), (k * 20, 0, 0)).save(tmp_path / "images" / label / f"{k}.png")
    with pytest.raises(SystemExit, match="are 32 x 48 .height x width.; the search builds networks "
                                         "for square images"):
        search_main([*TINY, "--dataset", str(tmp_path / "images"), "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


def test_forward_refuses_images_of_another_size():
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=2, classifier_width=4))
    with pytest.raises(ValueError, match=r"expects images of 28 x 28 \(height x width\); got "
                                         r"shape \(2, 1, 28, 32\).* img_size=\[28, 32\]"):
        model(torch.rand(2, 1, 28, 32))
    with pytest.raises(ValueError, match="expects images of 28 x 28"):
        model(torch.rand(2, 1, 29, 29))  # would fit the classifier too, but is not the size
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


def test_score_refuses_a_single_image_and_integer_images():
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=2, classifier_width=4))
    with pytest.raises(ValueError, match=r"hold 1 image\(s\); .* at least 2"):
        score(model, torch.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"hold 1 image\(s\)"):
        score(model, torch.rand(3, 1, 1, 28, 28))  # a sequence [T, B, C, H, W] of one image
    with pytest.raises(ValueError, match="floating-point tensor, .* got torch.uint8 .*transform_batch"):
        score(model, torch.zeros(4, 1, 28, 28, dtype=torch.uint8))


# ---------------------------------------------------------------- the variants directory

def _variant_folder(directory, name, genotype="0302 0030 3003 0000", **model_args):
    folder = directory / name
    folder.mkdir(parents=True)
    config = dict(architecture=name, num_classes=10,
                  pretrained_cfg=dict(input_size=[1, 28, 28], num_classes=10),
                  model_args=dict(genotype=genotype, width=2, classifier_width=4, in_chans=1,
                                  img_size=28, **model_args))
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_the_first_variants_directory_wins(tmp_path):
    from snnzoo.models.variants import VARIANT_ARGS, load_variants
    first = _variant_folder(tmp_path / "a", "snasnet_twice", "0302 0030 3003 0000")
    second = _variant_folder(tmp_path / "b", "snasnet_twice", "0100 0001 0000 0000")
    with pytest.warns(RuntimeWarning, match=f"skipping the variant snasnet_twice in {second}: "
                                            f"{first} .an earlier variants directory. defines it"):
        assert load_variants([tmp_path / "a", tmp_path / "b"]) == ["snasnet_twice"]
    assert VARIANT_ARGS["snasnet_twice"]["genotype"] == "0302 0030 3003 0000"


@pytest.mark.parametrize("name, model_args, message", [
    ("snasnet_bad_genotype", dict(genotype="0909 0030 3003 0000"), r"= 9 is not an operation"),
    ("snasnet_bad_argument", dict(widht=3), r"model_args \['widht'\] are not arguments of SNASNet"),
    ("snasnet_bad-name", dict(), "letters, digits and underscores"),
])
def test_broken_variant_folders_are_skipped_at_import_naming_the_folder(tmp_path, name, model_args,
                                                                         message):
    from snnzoo.models.variants import VARIANT_ARGS, load_variants
    folder = _variant_folder(tmp_path, name, **model_args)
    with pytest.warns(RuntimeWarning, match=f"skipping the variant in {folder}: .*{message}"):
        assert load_variants([tmp_path]) == []
    assert name not in VARIANT_ARGS


def test_variant_config_has_the_mode_of_any_new_file(tmp_path):
    from snnzoo.models.variants import write_variant_config
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=2, classifier_width=4))
    previous = os.umask(0o022)
    try:
        path = write_variant_config(tmp_path / "snasnet_mode", "snasnet_mode", model, {})
        (tmp_path / "other.txt").write_text("")
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == oct((tmp_path / "other.txt").stat().st_mode & 0o777)
    assert path.stat().st_mode & 0o777 == 0o644


def test_authors_score_refuses_multistep_neurons():
    model = SNASNet(**dict(MODEL_ARGS["snasnet_fmnist"], width=4, classifier_width=16,
                           timesteps=3))
    with pytest.raises(ValueError, match=r"per-timestep neurons.*returned \(3, 6,"):
        authors_score(model, torch.randn(6, 1, 28, 28))


def test_search_scores_training_images_as_transformed_for_training(tmp_path, monkeypatch):
    # The authors score batches of their training set with its training transform (search_snn.py
    # builds trainset with train_transform and hands it to find_best_neuroncell); snnzoo draws
    # the crops (and flips) from the search's seed, so a rerun scores the same images.
    from snnzoo.search import run
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    scored = []
    original = run.score
    monkeypatch.setattr(run, "score", lambda model, images, *a, **k:
                        scored.append(images.clone()) or original(model, images, *a, **k))
    out = tmp_path / "run"
    _search(out, "--num-search", "1")
    seed = (3 * run.SEED_MULTIPLIER + 0) * 16  # --seed 3, candidate 0, repeat 0
    train = load_dataset("fashion-mnist-sample", "train", augment=True)
    assert torch.equal(scored[0], first_batch(train, 12, seed=seed)[0])
    plain = first_batch(load_dataset("fashion-mnist-sample", "train"), 12, seed=seed)[0]
    assert not torch.equal(scored[0], plain)
    settings = json.loads((out / "search.json").read_text())
    assert (settings["score_version"], settings["augment"], settings["every_draw"],
            settings["carry_state"]) == (2, True, False, False)
    _search(tmp_path / "plain", "--num-search", "1", "--no-augment", "--name", "snasnet_plain")
    assert torch.equal(scored[-1], plain)


def test_a_search_scored_with_the_earlier_score_is_not_resumed(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    out = tmp_path / "run"
    _search(out, "--num-search", "1")
    settings = json.loads((out / "search.json").read_text())
    for key in ("score_version", "augment", "every_draw", "carry_state"):
        del settings[key]  # as a search.json written before the score was fixed
    (out / "search.json").write_text(json.dumps(settings))
    with pytest.raises(SystemExit, match=r"earlier score \(version 1.*another --out"):
        _search(out, "--num-search", "2", "--resume")
    assert len(_records(out)) == 1


def test_every_draw_scores_repeated_cells_again(tmp_path, monkeypatch):
    # --seed 0's first 8 backward draws hold 0002 0000 0000 0000 three times (indices 1, 2, 7)
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    options = [*QUICK[:-2], "--seed", "0", "--cell", "backward"]
    search_main([*options, "--out", str(tmp_path / "distinct")])
    search_main([*options, "--out", str(tmp_path / "every"), "--every-draw",
                 "--name", "snasnet_every"])
    distinct, every = _records(tmp_path / "distinct"), _records(tmp_path / "every")
    assert [r["index"] for r in every] == list(range(8))
    assert [r["index"] for r in distinct] == [0, 1, 3, 4, 5, 6]
    repeated = [r for r in every if r["genotype"] == "0002 0000 0000 0000"]
    assert [r["index"] for r in repeated] == [1, 2, 7]
    assert len({r["score"] for r in repeated}) == 3, "each draw has its own weights and images"
    for record in distinct:  # a cell's first draw scores the same either way
        assert every[record["index"]]["score"] == record["score"]


def test_the_search_writes_only_into_a_new_empty_or_its_own_folder(tmp_path, monkeypatch, capsys):
    # Into an existing model folder it replaced its cell.png and mixed its files in, and
    # publish then accepted the folder.
    import shutil
    monkeypatch.setenv("SNNZOO_VARIANTS_DIR", str(tmp_path / "variants"))
    folder = tmp_path / "snasnet_fmnist"
    shutil.copytree(ROOT / "model_cards" / "snasnet_fmnist", folder)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    for resume in ([], ["--resume"]):
        with pytest.raises(SystemExit, match=r"holds README.md, cell.png, .* but no search"):
            _search(folder, "--num-search", "1", *resume)
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    (tmp_path / "empty").mkdir()
    assert _search(tmp_path / "empty", "--num-search", "1") == 0
