"""How many epochs of `python -m snnzoo.train` fit in a time budget on this machine.

Times training steps (forward, backward, SGD) and evaluation batches of the model on random
images of its input size, then prints the number of whole epochs that fit in --budget
seconds, with a safety margin, as the last line of stdout. scripts/gpu_check.sh uses it to
size a training run to the device time it has.

    python scripts/training_epochs.py snasnet_fmnist --budget 300 --batch-size 128
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

import snnzoo


def seconds_per_call(function, device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--budget", type=float, required=True, help="seconds for the whole run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    parser.add_argument("--train-images", type=int, default=57000, help="per epoch")
    parser.add_argument("--eval-images", type=int, default=13000,
                        help="evaluated per epoch (validation + test)")
    parser.add_argument("--final-images", type=int, default=10000,
                        help="evaluated once at the end (with spike counting)")
    parser.add_argument("--overhead", type=float, default=2.0,
                        help="seconds per epoch for logs, plots and checkpoints")
    parser.add_argument("--margin", type=float, default=1.15,
                        help="multiplies the measured times (other work on the machine)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--backend", default="auto", help="LIF backend of the model")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    model = snnzoo.create_model(args.model, backend=args.backend).to(device)
    channels, height, width = model.pretrained_cfg["input_size"]
    images = torch.randn(args.batch_size, channels, height, width, device=device)
    labels = torch.randint(model.num_classes, (args.batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), 0.01, momentum=0.9)

    def train_step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step = seconds_per_call(train_step, device, 5, args.steps)
    model.eval()
    eval_images = torch.randn(args.eval_batch_size, channels, height, width, device=device)
    with torch.no_grad():
        evaluation = seconds_per_call(lambda: model(eval_images), device, 1, 3)
    epoch = args.margin * (args.train_images // args.batch_size * step
                           + args.eval_images / args.eval_batch_size * evaluation) + args.overhead
    final = args.margin * 2 * args.final_images / args.eval_batch_size * evaluation + 5
    epochs = max(1, int((args.budget - final) // epoch))
    print(f"{args.model} on {device}: {step * 1e3:.1f} ms per training step of "
          f"{args.batch_size}, {evaluation * 1e3:.1f} ms per evaluation batch of "
          f"{args.eval_batch_size}; about {epoch:.1f} s per epoch: {epochs} epochs in "
          f"{args.budget:.0f} s", file=sys.stderr)
    print(epochs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
