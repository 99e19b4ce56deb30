"""Engine overhead: ``gradient_ascent`` vs a bare hand-written PyTorch gradient-ascent loop.

Same small CNN (1x64x64 -> 100 units, three conv layers), same unit, same initial image, SGD, 200 steps;
both in this process, interleaved, minimum of several repeats. Target: engine <= 1.03x the bare loop.

Run: ``python benchmarks/engine_overhead.py [--steps 200] [--repeats 7] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import timed, write_section
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel


def small_cnn(n_units: int = 100, channels: int = 16) -> nn.Module:
    """Three conv layers (9x9, 7x7, 7x7; the last two with stride 2) and a linear readout; frozen, eval mode."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, channels, 9, padding=4), nn.ELU(),
        nn.Conv2d(channels, channels, 7, padding=3, stride=2), nn.ELU(),
        nn.Conv2d(channels, channels, 7, padding=3, stride=2), nn.ELU(),
        nn.Flatten(), nn.Linear(channels * 16 * 16, n_units),
    )
    return model.eval().requires_grad_(False)


def bare_loop(model: nn.Module, unit: int, steps: int, lr: float, seed: int, device: torch.device) -> torch.Tensor:
    """What a competent user writes by hand: one forward, one backward, one step."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn((1, 64, 64), generator=generator)[None].to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -model(x)[:, unit].sum()
        loss.backward()
        optimizer.step()
    return x.detach()


def engine(model: nn.Module, unit: int, steps: int, lr: float, seed: int, device: torch.device) -> torch.Tensor:
    config = {
        "device": str(device), "shape": [1, 1, 64, 64],
        "initial": {"path": "mei.initial.RandomNormal"},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": lr}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
    }
    return gradient_ascent(None, ConstrainedOutputModel(model, unit), config, seed)[0]




def measure(channels: int, steps: int, repeats: int, device: torch.device) -> tuple[float, float, bool]:
    """``(bare ms/step, engine ms/step, same MEI)`` for one model, interleaved, minimum over ``repeats``."""
    model = small_cnn(channels=channels).to(device)
    args = (model, 7, steps, 0.05, 1, device)
    engine(model, 7, 5, 0.05, 1, device)  # warm-up both paths
    bare_loop(model, 7, 5, 0.05, 1, device)
    bare, eng = [], []
    for _ in range(repeats):
        t_bare, x_bare = timed(bare_loop, *args)
        t_eng, x_eng = timed(engine, *args)
        bare.append(t_bare)
        eng.append(t_eng)
    same = torch.allclose(x_bare.cpu(), x_eng, atol=1e-5)
    return 1000 * min(bare) / steps, 1000 * min(eng) / steps, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32], help="conv widths to measure")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for channels in args.channels:
        bare, eng, same = measure(channels, args.steps, args.repeats, device)
        print(f"{channels} channels: bare loop {bare:.2f} ms/step, engine {eng:.2f} ms/step, ratio {eng / bare:.3f} "
              f"(target <= 1.03); same MEI as the bare loop: {same}", flush=True)
        rows.append(f"| {channels} | {bare:.2f} | {eng:.2f} | **{eng / bare:.3f}** | {same} |")
    if not args.no_write:
        write_section(f"engine_overhead_{device.type}", "\n".join([
            f"## Engine overhead ({device.type})", "",
            f"`python benchmarks/engine_overhead.py --device {device.type}`: 3-layer CNN 1x64x64 -> 100 units "
            f"(9x9, 7x7, 7x7 convolutions of the width below), SGD, {args.steps} steps, the same seeded initial "
            f"image; bare loop and engine interleaved in one process, min of {args.repeats} repeats, torch threads "
            f"{torch.get_num_threads()}. Target: engine / bare loop <= 1.03 (the reference sinzlab "
            "implementation measured about 2.3x).", "",
            "| conv width | bare loop ms/step | `gradient_ascent` ms/step | ratio | same MEI (atol 1e-5) |",
            "|---|---|---|---|---|", *rows, "",
            "The engine's own work is a fixed ~30 us per step on this CPU (measured on a near-empty model): a "
            "copy of the input for `State.input_`, a NaN/Inf probe, the `State` object and the component calls. "
            "It is a larger share of a lighter model's step.",
        ]))


if __name__ == "__main__":
    main()
