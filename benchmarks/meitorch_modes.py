"""Overhead of the meitorch front end (``mei.meitorch``) over a bare PyTorch loop doing the same steps.

Pixel mode (one image, SGD) and variational mode (16 reparameterized samples, Adam, learned stddev) on a
3-layer CNN (1x64x64 -> 100 units), against hand-written loops with the same forward/backward/step, timed
alternately in one process; the ratio of medians is reported. On CUDA too where there is a GPU.

Run: ``python benchmarks/meitorch_modes.py`` (or ``python -m benchmarks meitorch_modes``); add ``--no-write``
to print without updating ``docs/benchmarks.md``, ``--cuda-only`` to skip the CPU.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import timed, write_section
from mei.meitorch.mei import MEI

STEPS = 200


def cnn(device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 32, 7, padding=3), nn.ReLU(), nn.Conv2d(32, 32, 5, stride=2, padding=2),
                          nn.ReLU(), nn.Conv2d(32, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(32 * 16 * 16, 100))
    return model.to(device).requires_grad_(False).eval()





def bare_pixel(model: nn.Module, device: torch.device) -> None:
    x = torch.randn(1, 1, 64, 64, device=device, requires_grad=True)
    optimizer = torch.optim.SGD([x], lr=0.1)
    for _ in range(STEPS):
        optimizer.zero_grad()
        (-model(x)[:, 0].mean()).backward()
        optimizer.step()


def bare_variational(model: nn.Module, device: torch.device) -> None:
    params = torch.randn(2, 1, 64, 64, device=device).requires_grad_(True)
    optimizer = torch.optim.Adam([params], lr=0.05)
    for _ in range(STEPS):
        optimizer.zero_grad()
        samples = params[0] + params[1].exp() * torch.randn(16, 1, 64, 64, device=device)
        (-model(samples)[:, 0].mean()).backward()
        optimizer.step()


def front_end(model: nn.Module, device: torch.device, mode: str) -> Callable[[], object]:
    def operation(inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        activation = model(inputs)[:, 0].mean()
        return {"objective": -activation, "activation": activation}

    mei = MEI(operation, shape=(1, 64, 64), device=device)
    if mode == "pixel":
        config = {"iter_n": STEPS, "optimizer": "sgd", "optimizer_params": {"lr": 0.1}}
        return lambda: mei.generate_pixel_mei(config, seed=0)
    config = {"iter_n": STEPS, "optimizer": "adam", "optimizer_params": {"lr": 0.05}, "n_samples_per_batch": 16}
    return lambda: mei.generate_variational_mei(config, seed=0)


def measure(device: torch.device, repeats: int = 5) -> list[tuple[str, float, float]]:
    model = cnn(device)
    rows = []
    for mode, bare in (("pixel", bare_pixel), ("variational", bare_variational)):
        run = front_end(model, device, mode)
        run(), bare(model, device)  # warm-up
        ours, theirs = [], []
        for _ in range(repeats):
            ours.append(timed(run)[0] / STEPS)
            theirs.append(timed(bare, model, device)[0] / STEPS)
        rows.append((mode, statistics.median(theirs) * 1e3, statistics.median(ours) * 1e3))
    return rows


def main() -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    devices = [] if "--cuda-only" in sys.argv else [torch.device("cpu")]
    devices += [torch.device("cuda")] if torch.cuda.is_available() else []
    lines = ["## meitorch front end vs a bare loop", "",
             f"`python benchmarks/meitorch_modes.py`: {STEPS} steps, 3-layer CNN 1x64x64 -> 100 units, unit 0; "
             "pixel = one image with SGD, variational = 16 samples per step with Adam and a learned stddev. "
             "Medians of 5 alternating runs; the front end's time includes config validation, the loss "
             "history and the final evaluation.", "",
             "| device | mode | bare loop ms/step | mei.meitorch ms/step | ratio |", "|---|---|---|---|---|"]
    for device in devices:
        for mode, bare, ours in measure(device):
            lines.append(f"| {device.type} | {mode} | {bare:.2f} | {ours:.2f} | {ours / bare:.3f} |")
    print("\n".join(lines))
    if "--no-write" not in sys.argv:
        write_section("meitorch_modes", "\n".join(lines))


if __name__ == "__main__":
    main()
