"""Does the training-free score predict accuracy? Kendall's tau between the score of sampled
architectures and their accuracy after brief training on Fashion-MNIST.

The paper reports tau = 0.646 on CIFAR-100 (fully trained networks). Here every
architecture is the snasnet_fmnist macro network at a small width, scored untrained as the
search does, then trained for --steps SGD steps (the authors' optimiser settings) on the
Fashion-MNIST training set and measured on its test set.

    python benchmarks/score_vs_accuracy.py [--architectures 20] [--steps 300] [--width 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (RESULTS_DIR, add_smoke_option, append_csv, device_name,  # noqa: E402
                    markdown_table, parse_benchmark_args, versions)

from snnzoo.data import dataset_info, first_batch, load_dataset  # noqa: E402
from snnzoo.evaluate import evaluate  # noqa: E402
from snnzoo.search.run import (channels_last_by_default, model_args_for,  # noqa: E402
                               score_candidate, unique_candidates)
from snnzoo.models.snasnet import SNASNet  # noqa: E402


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (ties counted in neither pair class)."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / denominator if denominator else 0.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--architectures", type=int, default=20)
    parser.add_argument("--cell", default="backward", choices=["forward", "backward"])
    parser.add_argument("--steps", type=int, default=300, help="training steps per architecture")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=float, default=0.5, help="multiplies snasnet_fmnist's widths")
    parser.add_argument("--score-batch", type=int, default=128)
    parser.add_argument("--test-images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-csv", action="store_true")
    add_smoke_option(parser)
    args = parse_benchmark_args(parser, argv)
    if args.smoke:
        args.dataset, args.architectures, args.steps, args.batch_size = "fashion-mnist-sample", 2, 1, 8
        args.width, args.score_batch, args.test_images = 0.125, 8, 20
    device = torch.device(args.device)
    info = dataset_info(args.dataset)
    train_set = load_dataset(args.dataset, "train", augment=False)
    test_set = load_dataset(args.dataset, "test")
    test_subset = torch.utils.data.Subset(test_set, range(min(args.test_images, len(test_set))))
    search_args = argparse.Namespace(dataset=args.dataset, cell=args.cell, timesteps=5,
                                     width=args.width, seed=args.seed, repeat=2,
                                     batch_size=args.score_batch,
                                     num_search=args.architectures * 3,
                                     channels_last=channels_last_by_default(device))
    model_args = model_args_for(search_args, info)
    candidates = unique_candidates(search_args)[:args.architectures]
    rows = []
    for candidate in candidates:
        started = time.perf_counter()
        scored = score_candidate(candidate, model_args, train_set, search_args, device)
        torch.manual_seed(args.seed)
        model = SNASNet(genotype=candidate.genotype, **model_args).to(device).train()
        optimizer = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=5e-4)
        for step in range(args.steps):
            images, labels = first_batch(train_set, args.batch_size, seed=args.seed * 7919 + step)
            loss = F.cross_entropy(model(images.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        accuracy = evaluate(model, DataLoader(test_subset, 500), device)["top1"]
        rows.append(dict(genotype=candidate.genotype, score=scored["score"], top1=accuracy))
        print(f"{candidate.genotype}  score {scored['score']:.3f}  top-1 {accuracy:.2f}%  "
              f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    finite = [row for row in rows if row["score"] != float("-inf")]
    tau = kendall_tau([row["score"] for row in finite], [row["top1"] for row in finite])
    setting = (f"{len(rows)} {args.cell} cells, snasnet_fmnist x{args.width}, {args.steps} steps "
               f"of batch {args.batch_size} on {args.dataset}, test on {len(test_subset)} images")
    print(f"\nKendall's tau between score and accuracy: {tau:.3f} ({setting}; "
          f"{device_name(device)}, {versions()})\n")
    print(markdown_table(["genotype", "score", "top-1 %"],
                         [[f"`{r['genotype']}`", f"{r['score']:.3f}", f"{r['top1']:.2f}"]
                          for r in sorted(rows, key=lambda r: -r["score"])]))
    if not args.no_csv:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        (RESULTS_DIR / "score_vs_accuracy.json").write_text(
            json.dumps(dict(tau=tau, setting=setting, device=device_name(device),
                            versions=versions(), rows=rows), indent=2) + "\n")
        append_csv("score_vs_accuracy", [dict(device=device_name(device), versions=versions(),
                                              setting=setting, kendall_tau=f"{tau:.4f}")])


if __name__ == "__main__":
    main()
