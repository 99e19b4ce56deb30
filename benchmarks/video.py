"""Video MEIs: engine vs a bare loop, what the video components cost, and batched units, on a retina-sized model.

Model: a two-layer 3-D CNN core (2 channels, 50 frames, 18x16 pixels, as in mouse-retina recordings) and a
linear readout per neuron and time bin, output ``(images, 100 neurons, 36 bins)``; the objective is a
neuron's mean response over time. Timed in one process, interleaved, minimum of several repeats:

* bare loop: a hand-written SGD loop with the same objective and a per-movie norm constraint;
* engine, plain: ``gradient_ascent`` with the same components (the ratio to the bare loop is the engine's cost);
* engine, video: ``video_config`` with spatio-temporal jitter, spatio-temporal low-pass of the gradient,
  temporal smoothness and per-channel clipping (the ratio to plain is what those components cost);
* batched: ``gradient_ascent_batched`` for K neurons in one forward vs K sequential plain runs.

Run: ``python benchmarks/video.py [--device cpu|cuda] [--steps 50] [--repeats 3] [--batch 16]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import timed, write_section
from mei.batched import gradient_ascent_batched
from mei.methods import gradient_ascent
from mei.modules import ConstrainedOutputModel
from mei.reducers import MeanOverTime
from mei.targets.video import video_config

SHAPE = (1, 2, 50, 18, 16)
NORM = 10.0


class RetinaCNN(nn.Module):
    """Conv3d(2->16, 11x9x9) - ELU - Conv3d(16->16, 5x7x7) - ELU - per-bin linear readout to ``n_neurons``."""

    def __init__(self, n_neurons: int = 100) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.core = nn.Sequential(nn.Conv3d(2, 16, (11, 9, 9), padding=(0, 4, 4)), nn.ELU(),
                                  nn.Conv3d(16, 16, (5, 7, 7), padding=(0, 3, 3)), nn.ELU())
        self.readout = nn.Linear(16 * SHAPE[3] * SHAPE[4], n_neurons)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.core(x)  # (N, 16, T', H, W)
        per_bin = features.permute(0, 2, 1, 3, 4).flatten(2)  # (N, T', 16*H*W)
        return self.readout(per_bin).transpose(1, 2)  # (N, neurons, T')


def bare_loop(model: nn.Module, unit: int, steps: int, device: torch.device) -> torch.Tensor:
    """A hand-written loop: forward, backward, SGD step, rescale to the norm."""
    x = (0.1 * torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))).to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([x], lr=1.0)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -model(x)[:, unit].mean(dim=-1).sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            x.mul_(NORM / x.norm())
    return x.detach()


def configs(steps: int, device: torch.device) -> dict[str, dict]:
    plain = video_config(shape=list(SHAPE), steps=steps, lr=1.0, norm=NORM, device=str(device))
    video = video_config(shape=list(SHAPE), steps=steps, lr=1.0, norm=NORM, device=str(device), sigma=1.0,
                         sigma_time=2.0, max_shift_space=2, max_shift_time=3, smoothness=0.01,
                         x_min=[-1.0, -1.0], x_max=[1.0, 1.0])
    return {"plain": plain, "video": video}




def measure(model: nn.Module, steps: int, repeats: int, k: int, device: torch.device) -> dict[str, float]:
    cfg = configs(steps, device)
    objective = ConstrainedOutputModel(model, 3, target_fn=MeanOverTime())
    objectives = [ConstrainedOutputModel(model, u, target_fn=MeanOverTime()) for u in range(k)]
    runs = {
        "bare": lambda: bare_loop(model, 3, steps, device),
        "plain": lambda: gradient_ascent(None, objective, cfg["plain"], 1),
        "video": lambda: gradient_ascent(None, objective, cfg["video"], 1),
        "batched": lambda: gradient_ascent_batched(None, objectives, cfg["plain"], list(range(k))),
    }
    for run in runs.values():  # warm-up
        run()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(timed(run)[0])
    return {name: min(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    model = RetinaCNN().to(device).eval().requires_grad_(False)
    t = measure(model, args.steps, args.repeats, args.batch, device)
    ms = {name: 1000 * value / args.steps for name, value in t.items()}
    sequential = t["plain"] * args.batch
    lines = [
        f"## Video MEIs ({device.type})", "",
        f"`python benchmarks/video.py --device {device.type} --steps {args.steps} --batch {args.batch}`: "
        f"movie {list(SHAPE[1:])}, 3-D CNN core + readout (100 neurons x 36 bins), mean over time, SGD, "
        f"min of {args.repeats} interleaved repeats, torch threads {torch.get_num_threads()}.", "",
        "| path | ms/step |", "|---|---|",
        f"| bare PyTorch loop (norm constraint) | {ms['bare']:.2f} |",
        f"| `gradient_ascent`, plain video config | {ms['plain']:.2f} |",
        f"| `gradient_ascent`, full video config | {ms['video']:.2f} |",
        f"| `gradient_ascent_batched`, {args.batch} neurons (per step of all {args.batch}) | {ms['batched']:.2f} |",
        "",
        f"Engine / bare loop: **{t['plain'] / t['bare']:.3f}**. Video components (spatio-temporal jitter, "
        f"spatio-temporal low-pass, temporal smoothness, per-channel clipping) / plain: "
        f"**{t['video'] / t['plain']:.3f}**. Batched {args.batch} neurons vs {args.batch} sequential runs: "
        f"**{sequential / t['batched']:.1f}x** the throughput "
        f"({args.batch / t['batched']:.1f} vs {args.batch / sequential:.1f} MEIs/s at {args.steps} steps).",
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(f"video_{device.type}", "\n".join(lines))


if __name__ == "__main__":
    main()
