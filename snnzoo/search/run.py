"""One search run: sample cells, score each untrained candidate, keep the best, emit it.

Every candidate's network initialisation and image batches (their training transform
included) are seeded by (seed, candidate index), never by what ran before, so a run split
over processes, interrupted and resumed, or repeated gives the same scores and the same
winner on the same device. docs/search.md says where and why the procedure differs from the
authors' by default, and which options give theirs.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from snnzoo._files import (visible_entries, write_atomically, write_json_atomically,
                           write_text_atomically)
from snnzoo._messages import abbreviated_list
from snnzoo.cards import ARXIV_ID, LICENSE
from snnzoo.distributed import init_distributed, process_device
from snnzoo.hub import move_into_place
from snnzoo.data import dataset_info, exit_on_data_error, first_batch, load_dataset
from snnzoo.models.snasnet import MODEL_ARGS, SNASNet
from snnzoo.models.variants import register_variant, variants_dirs, write_variant_config
from snnzoo.precision import computing_in

from .scoring import score
from .space import sample_genotypes

CANDIDATES = "candidates.jsonl"
SETTINGS = "search.json"
# The entrypoint whose macro network a data set's search uses.
BASE_MODEL = {"fashion-mnist-sample": "snasnet_fmnist", "fashion-mnist": "snasnet_fmnist",
              "cifar10": "snasnet_cifar10", "cifar100": "snasnet_cifar100",
              "tinyimagenet": "snasnet_tinyimagenet"}
# What the score is: 1, snnzoo before the authors' formula was fixed (N missing from the
# rescale); 2, the authors' (snnzoo.kernels.spike_kernel).
SCORE_VERSION = 2
# Settings that must match for --resume to continue a run.
RUN_KEYS = ("dataset", "cell", "num_search", "batch_size", "repeat", "timesteps", "width",
            "seed", "model_args", "channels_last", "score_version", "augment", "every_draw",
            "carry_state", "precision")
# What runs from before a key was recorded used.
RUN_KEY_DEFAULTS = {"channels_last": False, "score_version": 1, "augment": False,
                    "every_draw": False, "carry_state": False, "precision": "fp32"}
# In each variant folder the search writes: which run wrote it, so that no other run replaces it.
RUN_MARKER = ".snnzoo-search-run.json"
SEED_MULTIPLIER = 1_000_003  # candidate seed = seed x SEED_MULTIPLIER + index


@dataclass
class Candidate:
    index: int  # position in the seeded sample sequence (first occurrence)
    genotype: str


def model_args_for(args, info) -> dict:
    """The macro network of the search: the data set's entrypoint, widths scaled by --width."""
    base = dict(MODEL_ARGS[BASE_MODEL.get(args.dataset, "snasnet_cifar100")])
    base.update(num_classes=info.num_classes, in_chans=info.input_size[0],
                img_size=info.input_size[1], timesteps=args.timesteps, cell=args.cell)
    base["width"] = max(1, round(base["width"] * args.width))
    base["classifier_width"] = max(1, round(base["classifier_width"] * args.width))
    base.pop("genotype")
    return base


def unique_candidates(args) -> list[Candidate]:
    """The seeded samples with repeats of an already drawn (pruned) genotype left out."""
    seen, candidates = set(), []
    for candidate in all_draws(args):
        if candidate.genotype not in seen:
            seen.add(candidate.genotype)
            candidates.append(candidate)
    return candidates


def all_draws(args) -> list[Candidate]:
    """Every one of the --num-search seeded samples, repeated genotypes included (the
    authors' search scores each draw)."""
    return [Candidate(index, str(genotype)) for index, genotype
            in enumerate(sample_genotypes(args.cell, args.num_search, args.seed))]


def search_candidates(args) -> list[Candidate]:
    """What the search scores: every draw with --every-draw, else each distinct cell once."""
    return all_draws(args) if args.every_draw else unique_candidates(args)


def score_candidate(candidate: Candidate, model_args, dataset, args, device) -> dict:
    """Mean score over --repeat batches of a freshly initialised network in train mode. Each
    batch starts from rest, or with --carry-state from the state the previous batch left in
    the authors' per-timestep network with the same weights (as their search runs)."""
    started = time.perf_counter()
    seed = args.seed * SEED_MULTIPLIER + candidate.index
    torch.manual_seed(seed)
    model = SNASNet(genotype=candidate.genotype, **model_args).to(device).train()
    if args.carry_state:
        from snnzoo.convert import authors_network
        model = authors_network(model)
        model.rest_on_call = False
    elif args.channels_last:
        model.to(memory_format=torch.channels_last)
    repeats = []
    for repeat in range(args.repeat):
        images, _ = first_batch(dataset, args.batch_size, seed=seed * 16 + repeat)
        torch.manual_seed(seed * 16 + repeat)
        with computing_in(model, args.precision, device):  # the scorer counts exactly in any
            repeats.append(score(model, images.to(device)))
    value = -math.inf if any(not math.isfinite(r) for r in repeats) else sum(repeats) / len(repeats)
    return dict(index=candidate.index, genotype=candidate.genotype, score=value,
                repeats=repeats, seconds=round(time.perf_counter() - started, 3))


def read_records(out: Path, repair: bool = False) -> dict[int, dict]:
    """Scored candidates by sample index, from candidates.jsonl and any per-rank files. A line cut
    short by a kill is dropped (that candidate is scored again); with repair, files holding
    one are rewritten without it, so that appending continues on a clean line."""
    records = {}
    for path in sorted(out.glob("candidates*.jsonl")):
        text = path.read_text()
        valid = []
        for line in text.split("\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            valid.append(line)
            record["score"] = -math.inf if record["score"] is None else float(record["score"])
            records[record["index"]] = record
        cleaned = "".join(line + "\n" for line in valid)
        if repair and cleaned != text:
            write_text_atomically(path, cleaned)
    return records


def _json_record(record: dict) -> dict:
    """The record with non-finite scores as null: standard JSON, which has no -Infinity."""
    def finite_or_none(value):
        return value if value is None or math.isfinite(value) else None
    record = dict(record, score=finite_or_none(record["score"]))
    if "repeats" in record:
        record["repeats"] = [finite_or_none(value) for value in record["repeats"]]
    return record


def _json_line(record: dict) -> str:
    return json.dumps(_json_record(record), allow_nan=False) + "\n"


def _append(handle, record):
    handle.write(_json_line(record))
    handle.flush()
    os.fsync(handle.fileno())


def _previous_settings(out: Path) -> Optional[dict]:
    """The settings recorded by the run in out (defaults for keys added since), or None."""
    path = out / SETTINGS
    if not path.exists():
        return None
    try:
        recorded = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SystemExit(f"error: {path} is not valid JSON ({error}); it records the settings of "
                         f"the search in {out}: restore it, or start a new search with another "
                         f"--out") from None
    return {**RUN_KEY_DEFAULTS, **recorded}


def check_seed(seed: int, num_search: int, repeat: int) -> Optional[str]:
    """None, or why seed cannot seed every candidate: torch seeds are 64-bit integers."""
    lowest_allowed = -(2 ** 63 // (16 * SEED_MULTIPLIER))
    highest_allowed = ((2 ** 64 - 1 - (repeat - 1)) // 16 - (num_search - 1)) // SEED_MULTIPLIER
    if lowest_allowed <= seed <= highest_allowed:
        return None
    return (f"--seed {seed} is out of range: candidate k's images are seeded with (seed x "
            f"{SEED_MULTIPLIER} + k) x 16 + repeat, which must fit in 64 bits; use a seed "
            f"between {lowest_allowed} and {highest_allowed}")


def check_output_layout(out: Path, name: str) -> Optional[str]:
    """None, or why --out cannot hold the run: the variant's copy in the variants directory
    replaces that folder, so --out must not be it or lie inside it."""
    registry = (variants_dirs()[0] / name).resolve()
    out = Path(out).resolve()
    if out == registry or registry in out.parents:
        return (f"--out {out} lies inside {registry}, the folder that the variant {name} is "
                f"copied to (replacing what is there): the search's results would be deleted; "
                f"choose an --out outside it (e.g. runs/{name}) or another --name")
    return None


def _variant_folders(out: Path, name: str) -> list[Path]:
    return [out / name, variants_dirs()[0] / name]


def _check_variant_folders(out: Path, name: str, run_id: str, settings: dict,
                           legacy: bool = False):
    """Refuse to replace a variant folder that another search (or anything else) wrote,
    unless that search had these settings (its seed fixes its winner: the same variant). A run
    recorded before runs had ids (legacy, resumed) owns the folders that carry no run's id."""
    for folder in _variant_folders(out, name):
        marker = _run_marker(folder)
        if legacy and marker is None:
            continue
        if folder.exists() and (marker is None or (marker["run_id"] != run_id
                                                   and _recorded(marker) != settings)):
            theirs = (marker or {}).get("settings")
            why = ""
            if isinstance(theirs, dict):
                differing = [f"{key} {theirs.get(key)!r} (now {value!r})"
                             for key, value in settings.items() if theirs.get(key) != value]
                why = (f" (a search in {marker.get('out')} with other settings: "
                       f"{'; '.join(differing)})")
            raise SystemExit(f"error: {folder} holds a variant {name} that this search did not "
                             f"write{why}; choose another --name, or delete {folder} to "
                             f"replace it")


def _recorded(marker: dict) -> Optional[dict]:
    """A marker's settings with the defaults of keys recorded since it was written."""
    settings = marker.get("settings")
    return {**RUN_KEY_DEFAULTS, **settings} if isinstance(settings, dict) else settings


def _run_marker(folder: Path) -> Optional[dict]:
    """The marker a search left in a variant folder it wrote: its run_id and settings."""
    try:
        marker = json.loads((folder / RUN_MARKER).read_text())
        return marker if isinstance(marker.get("run_id"), str) else None
    except (OSError, ValueError, AttributeError):
        return None


def _settings_of_the_winner(settings: dict) -> dict:
    """What decides a search's winner: its settings, as JSON keeps them, without the run id."""
    return json.loads(json.dumps({key: value for key, value in settings.items()
                                  if key != "run_id"}))


def _check_settings(out: Path, settings: dict, previous: Optional[dict], resume: bool):
    if out.exists() and not out.is_dir():
        raise SystemExit(f"error: --out {out} is a file; choose a folder for the search")
    others = visible_entries(out)
    if previous is None and not (out / CANDIDATES).exists() and others:
        raise SystemExit(f"error: --out {out} holds {abbreviated_list(others)} but no search ({SETTINGS}): "
                         f"the search writes only into a new or empty folder, or continues its "
                         f"own run there; choose another --out")
    if previous is not None or (out / CANDIDATES).exists():
        if not resume:
            raise SystemExit(f"error: {out} holds a search already; pass --resume to continue "
                             f"it, or choose another --out")
        if previous is not None:
            changed = {key: (previous.get(key), settings[key]) for key in RUN_KEYS
                       if previous.get(key) != settings[key]}
            if "score_version" in changed:
                raise SystemExit(
                    f"error: the search in {out} was scored with snnzoo's earlier score (version "
                    f"{previous['score_version']}: N was missing from the kernel's rescale), and "
                    f"its scores cannot be mixed with the authors' score that this version "
                    f"computes (version {SCORE_VERSION}); start a new search with another --out, "
                    f"or delete {out}")
            if changed:
                raise SystemExit(f"error: --resume with different settings than the run in {out}: "
                                 + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items()))


def _channels_last_setting(args, previous: Optional[dict]) -> bool:
    """--channels-last as given; if not given, what the run being resumed used (runs recorded
    before the setting existed used the contiguous layout), else on for the CPU only."""
    if args.channels_last is not None:
        return args.channels_last
    if args.resume and previous is not None:
        return previous["channels_last"]
    return channels_last_by_default(torch.device(args.device))


def channels_last_by_default(device: torch.device) -> bool:
    """The search's default layout: NHWC on the CPU, where its convolutions are faster."""
    return device.type == "cpu"


def run_search(args) -> dict:
    """Score the candidates of the search that `args` describe (continuing the one in --out
    with --resume) and emit its winner; rank 0 returns best.json's entries, others None."""
    rank, world = init_distributed()
    device = process_device(args.device, world)
    if args.name is None:
        args.name = default_name(args)
    problem = check_output_layout(args.out, args.name)
    if problem:
        raise SystemExit(f"error: {problem}")
    dataset, info = _search_images(args)
    model_args = model_args_for(args, info)
    _start_or_resume(args, model_args, rank, world)
    _score_share(args, model_args, dataset, device, rank, world)
    if world > 1:
        dist.barrier()
    result = _merge_and_finish(args, model_args, info) if rank == 0 else None
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return result


def _search_images(args):
    """(the training images the candidates are scored on, the data set's info), checked."""
    with exit_on_data_error():
        info = dataset_info(args.dataset)
        dataset = load_dataset(args.dataset, "train", args.data_dir, args.download,
                               augment=args.augment)
    if info.input_size[1] != info.input_size[2]:
        side = min(info.input_size[1:])
        raise SystemExit(f"error: the images of {args.dataset} are {info.input_size[1]} x "
                         f"{info.input_size[2]} (height x width); the search builds networks for "
                         f"square images: crop or resize them to a square (e.g. {side} x {side})")
    if args.batch_size > len(dataset):
        raise SystemExit(f"error: --batch-size {args.batch_size} is larger than the "
                         f"{len(dataset)} images of {args.dataset}")
    return dataset, info


def _start_or_resume(args, model_args: dict, rank: int, world: int):
    """Check --out and the variant folders against the run's settings, and record them (rank
    0); every process gets the run's id (args.run_id) or stops with rank 0's refusal."""
    out = args.out
    previous = _previous_settings(out)
    args.channels_last = _channels_last_setting(args, previous)
    settings = dict(dataset=args.dataset, cell=args.cell, num_search=args.num_search,
                    batch_size=args.batch_size, repeat=args.repeat, timesteps=args.timesteps,
                    width=args.width, seed=args.seed, model_args=model_args,
                    channels_last=args.channels_last, score_version=SCORE_VERSION,
                    augment=args.augment, every_draw=args.every_draw,
                    carry_state=args.carry_state, precision=args.precision,
                    run_id=(previous or {}).get("run_id") if args.resume else None)
    settings["run_id"] = settings["run_id"] or uuid.uuid4().hex
    args.run_id = settings["run_id"]
    args.legacy_run = bool(args.resume and previous is not None and "run_id" not in previous)
    args.winner_settings = _settings_of_the_winner(settings)
    refusal = None
    if rank == 0:
        try:
            _check_settings(out, settings, previous, args.resume)
            _check_variant_folders(out, args.name, args.run_id, args.winner_settings,
                                   args.legacy_run)
        except SystemExit as error:
            refusal = str(error)
        else:
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomically(out / SETTINGS, settings)
            read_records(out, repair=True)
    if world > 1:  # every process stops with rank 0's refusal, or shares its run id
        shared = [refusal, args.run_id]
        dist.broadcast_object_list(shared, src=0)
        refusal, args.run_id = shared
    if refusal:
        raise SystemExit(refusal)


def _score_share(args, model_args: dict, dataset, device, rank: int, world: int):
    """Score this process's share of the candidates not scored yet, appending each record to
    its candidates file as it is scored."""
    out = args.out
    candidates = search_candidates(args)
    done = read_records(out)
    mine = [c for k, c in enumerate(candidates) if k % world == rank and c.index not in done]
    shard = out / (CANDIDATES if world == 1 else f"candidates.rank{rank}.jsonl")
    best = max((r["score"] for r in done.values()), default=-math.inf)
    bar = tqdm(mine, desc=f"scoring ({len(done)} done before)" if done else "scoring",
               disable=rank != 0, dynamic_ncols=True, unit="cell")
    try:
        with open(shard, "a") as handle:
            for candidate in bar:
                record = score_candidate(candidate, model_args, dataset, args, device)
                _append(handle, record)
                best = max(best, record["score"])
                bar.set_postfix(best=f"{best:.2f}", last=f"{record['score']:.2f}")
    except KeyboardInterrupt:
        print(f"\ninterrupted: {CANDIDATES} keeps every scored candidate; continue with "
              f"--resume", file=sys.stderr)
        raise SystemExit(130)


def _merge_and_finish(args, model_args: dict, info) -> dict:
    """Gather every process's records into candidates.jsonl, in sample order, and finish."""
    out = args.out
    ordered = sorted(read_records(out).values(), key=lambda r: r["index"])
    write_text_atomically(out / CANDIDATES, "".join(_json_line(r) for r in ordered))
    for path in out.glob("candidates.rank*.jsonl"):
        path.unlink()
    return finish(args, ordered, model_args, info, out)


def ranking(records: list[dict]) -> list[dict]:
    """Best first; ties (and -inf) broken by sample order, so the winner is deterministic."""
    return sorted(records, key=lambda r: (-r["score"] if math.isfinite(r["score"]) else math.inf,
                                          r["index"]))


def default_name(args) -> str:
    """snasnet_<data set>_<cell>_seed<seed> (seed_minus<n> for a negative seed), in letters,
    digits and underscores only."""
    slug = "".join(ch if ch.isascii() and ch.isalnum() else "_"
                   for ch in Path(args.dataset).name.lower())
    seed = f"seed{args.seed}" if args.seed >= 0 else f"seed_minus{-args.seed}"
    return f"snasnet_{slug}_{args.cell}_{seed}"


def finish(args, records, model_args, info, out: Path) -> dict:
    """Summary table, best.json, pictures, and the winner as a registered model variant."""
    from snnzoo.viz import score_histogram

    ranked = ranking(records)
    winner = ranked[0]
    name = args.name or default_name(args)
    if not math.isfinite(winner["score"]):
        raise SystemExit(
            f"error: all {len(records)} candidates scored -inf: every network's spike kernel "
            f"is singular (its images spike alike, or not at all), so there is no winner and "
            f"nothing was registered. Try a larger --width (now {args.width}), a smaller "
            f"--batch-size (now {args.batch_size}) or other data; {out / CANDIDATES} keeps "
            f"the scores")
    _check_variant_folders(out, name, args.run_id, args.winner_settings, args.legacy_run)
    top = ranked[:args.top_k]
    _print_top(args, top, len(records))
    best = dict(name=name, genotype=winner["genotype"], cell=args.cell, score=winner["score"],
                index=winner["index"], scored=len(records), sampled=args.num_search,
                dataset=args.dataset, model_args=model_args, score_version=SCORE_VERSION,
                augment=args.augment, every_draw=args.every_draw, carry_state=args.carry_state,
                top=top)
    write_json_atomically(out / "best.json", dict(best, top=[_json_record(r) for r in top]),
                          allow_nan=False)
    score_histogram([r["score"] for r in records], out / "scores.png", best=winner["score"],
                    title=f"{len(records)} {args.cell} cells on {args.dataset}")
    registry = _emit_variant(args, best, model_args, info, out)
    print(f"\nwinner: {winner['genotype']} ({args.cell} cell), score {winner['score']:.3f}",
          file=sys.stderr)
    print(f"registered as {name} in {registry.parent} (results in {out})", file=sys.stderr)
    print(f'import snnzoo; model = snnzoo.create_model("{name}")')
    return best


def _print_top(args, top: list[dict], scored: int):
    width = max(len(r["genotype"]) for r in top)
    print(f"\ntop {len(top)} of {scored} scored {args.cell} cells "
          f"({args.num_search} sampled):", file=sys.stderr)
    print(f"{'rank':>4}  {'genotype':{width}}  {'score':>10}  {'index':>6}", file=sys.stderr)
    for place, record in enumerate(top, 1):
        print(f"{place:>4}  {record['genotype']:{width}}  {record['score']:>10.3f}  "
              f"{record['index']:>6}", file=sys.stderr)


def _emit_variant(args, best: dict, model_args: dict, info, out: Path) -> Path:
    """Write the winner's variant folder in out (config, card, cell picture, run marker), copy
    it into the variants directory and register it; the copy's path."""
    from snnzoo.search.card import variant_card
    from snnzoo.viz import draw_cell

    name, genotype = best["name"], best["genotype"]
    variant_folder = out / name
    variant_folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(variant_folder / RUN_MARKER,
                          json.dumps(dict(run_id=args.run_id, out=str(out.resolve()),
                                          settings=args.winner_settings)) + "\n")
    model = SNASNet(genotype=genotype, **model_args)
    pretrained_cfg = dict(input_size=tuple(info.input_size), mean=tuple(info.mean),
                          std=tuple(info.std), num_classes=info.num_classes, license=LICENSE,
                          first_conv="stem.0", classifier="fc", fixed_input_size=True,
                          paper_ids=f"arXiv:{ARXIV_ID}", timesteps=args.timesteps,
                          genotype=genotype, cell=args.cell)
    write_variant_config(variant_folder, name, model, pretrained_cfg)
    draw_cell((genotype, args.cell), variant_folder / "cell.png", title=name)
    write_atomically(out / "cell.png", lambda tmp: shutil.copyfile(variant_folder / "cell.png", tmp))
    write_text_atomically(variant_folder / "README.md", variant_card(name, best, model, args))
    registry = variants_dirs()[0] / name
    if registry.resolve() != variant_folder.resolve():
        staging = registry.with_name(f".{name}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(variant_folder, staging)
        move_into_place(staging, registry)  # one swap: the old folder or the new one, never none
    register_variant(name, dict(model.model_args, in_chans=model.in_chans,
                                num_classes=model.num_classes), pretrained_cfg)
    return registry
