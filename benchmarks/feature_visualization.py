"""Feature-visualization front ends vs bare hand-written loops doing the same work.

1. captum-style: ``InputOptimization`` (zoo InceptionV1 stand-in, 224x224 ``NaturalImage`` with FFT, colour
   decorrelation and sigmoid, ``TransformationRobustness``, ``ChannelActivation(mixed4a, 465)``, Adam) against a
   loop that renders the same image module, applies the same transforms, reads the layer through a forward hook
   and steps Adam on the same parameter.
2. act_max: ``mei.act_max_util.act_max`` with all four Yosinski regularizers (AlexNet stand-in, 227x227, SGD)
   against the classic loop (step, decay, periodic blur, norm crop, contribution crop from ``x * grad``).

Both variants run in this process, interleaved, minimum of several repeats; the figure is the ratio.

Run: ``python benchmarks/feature_visualization.py [--steps 50] [--repeats 5] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mei.act_max_util as amu
import mei.optim as opt
from benchmarks._report import timed, write_section
from mei.optim.postprocessing import _zero_below_percentile
from mei.preconditioners import blur2d


def captum_engine(model: nn.Module, image: nn.Module, steps: int) -> None:
    transforms = opt.transforms.TransformationRobustness()
    loss_fn = opt.loss.ChannelActivation(model.mixed4a, 465)
    opt.InputOptimization(model, loss_fn, image, transforms).optimize(opt.optimization.n_steps(steps, False))


def captum_bare(model: nn.Module, image: nn.Module, steps: int) -> None:
    transforms = opt.transforms.TransformationRobustness()
    store: dict[str, torch.Tensor] = {}
    handle = model.mixed4a.register_forward_hook(lambda m, a, out: store.__setitem__("a", out))
    optimizer = torch.optim.Adam([image.param], lr=0.025)
    try:
        for _ in range(steps):
            optimizer.zero_grad()
            model(transforms(image()))
            loss = -store["a"][:, 465].mean(dim=(1, 2)).sum()
            loss.backward()
            optimizer.step()
    finally:
        handle.remove()


def act_max_engine(model: nn.Module, start: torch.Tensor, steps: int) -> None:
    acts: dict[str, torch.Tensor] = {}
    handle = model.classifier[-1].register_forward_hook(amu.layer_hook(acts, "out"))
    try:
        amu.act_max(model, start, acts, "out", 130, steps=steps, alpha=100.0, L2_Decay=True, Gaussian_Blur=True,
                    Norm_Crop=True, Contrib_Crop=True)
    finally:
        handle.remove()


def act_max_bare(model: nn.Module, start: torch.Tensor, steps: int) -> None:
    x = start.clone().requires_grad_(True)
    for i in range(steps):
        x.grad = None
        model(x)[:, 130].sum().backward()
        with torch.no_grad():
            grad = x.grad
            x += 100.0 * grad
            x *= 0.9
            if (i + 1) % 4 == 0:
                x.copy_(blur2d(x, 1.0))
            x.copy_(_zero_below_percentile(x, torch.linalg.vector_norm(x, dim=1), 30))
            x.copy_(_zero_below_percentile(x, (x * grad).sum(dim=1).abs(), 30))




def compare(pairs: dict, args: tuple, repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in pairs}
    for _ in range(repeats):
        for name, (fn, make_args) in pairs.items():
            best[name] = min(best[name], timed(fn, *make_args())[0])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, steps = torch.device(args.device), args.steps
    inception = opt.models.googlenet().to(device).eval().requires_grad_(False)
    alexnet = opt.models.alexnet().to(device).eval().requires_grad_(False)
    torch.manual_seed(0)
    image_state = opt.images.NaturalImage((224, 224)).to(device).state_dict()
    start = torch.randn(1, 3, 227, 227, device=device)

    def fresh_image() -> tuple:
        image = opt.images.NaturalImage((224, 224)).to(device)
        image.load_state_dict(image_state)
        return inception, image, steps

    rows = []
    for label, pairs in [
        ("captum-style InputOptimization (InceptionV1 stand-in, 224x224, FFT+ToRGB, TransformationRobustness, Adam)",
         {"engine": (captum_engine, fresh_image), "bare": (captum_bare, fresh_image)}),
        ("act_max with all four Yosinski regularizers (AlexNet stand-in, 227x227, SGD)",
         {"engine": (act_max_engine, lambda: (alexnet, start, steps)),
          "bare": (act_max_bare, lambda: (alexnet, start, steps))}),
    ]:
        compare(pairs, (), 1)  # warm-up
        best = compare(pairs, (), args.repeats)
        ratio = best["engine"] / best["bare"]
        rows.append(f"| {label} | {1000 * best['bare'] / steps:.2f} | {1000 * best['engine'] / steps:.2f} | "
                    f"{ratio:.3f} |")
        print(rows[-1], flush=True)
    threads = f", {torch.get_num_threads()} CPU thread(s)" if device.type == "cpu" else ""
    markdown = "\n".join([
        f"## Feature visualization front ends ({device.type}{threads})", "",
        f"`python benchmarks/feature_visualization.py --steps {steps} --repeats {args.repeats} --device "
        f"{args.device}{f' --threads {args.threads}' if args.threads else ''}`: the front end on the engine vs a "
        "bare hand-written loop doing the same work, same process, interleaved, best of the repeats.", "",
        "| case | bare loop, ms/step | engine, ms/step | engine / bare |", "|---|---|---|---|", *rows,
    ])
    if not args.no_write:
        write_section(f"feature_visualization_{device.type}", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
