"""mei.featurevis against torch-lucent and Horama: same model, objective and step count; ms/step as a ratio to a
bare loop in the same process, and the final activation reached.

The peers run in a separate virtual environment that this script creates on first use (under the user's cache
folder, outside the repository): ``torch==2.13.0`` (the CPU build), ``kornia==0.4.1`` (lucent caps it), their
other imports, and ``torch-lucent==0.1.8`` / ``horama==0.3.0`` from the package index with ``--no-deps``. Both
peers hard-require torchvision, whose only build on the package index for torch 2.13 is a CUDA build that cannot
load beside the CPU torch (its ``_C.so`` links ``libtorch_cuda``), and the CPU build is not on the index. So the
script writes a stand-in ``torchvision`` package into that environment with the three names the peers import:
``transforms.Normalize`` (the same arithmetic), ``ops.roi_align`` (bilinear, ``aligned=False``, adaptive sampling
ratio, written here with ``grid_sample``) and ``datasets.utils.download_url`` (refuses: nothing is downloaded;
Horama's MACO spectrum file is written from the 1/f default instead). Everything else is the peers' own code.

The model is a seeded 4-layer CNN (defined here, pure torch, so both environments build the same weights);
the objective is the mean of one channel of its third block. Each case times the method and a bare loop (a
forward and backward of the model on the same number of images per step, Adam) in the same process, interleaved,
best of the repeats; the final activation is the objective on the final image, without transforms.

Run: ``python benchmarks/featurevis_peers.py [--steps 64] [--repeats 3] [--size 128]`` (``--no-write`` prints only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve()
LAYER, CHANNEL = "block3", 5
PEER_PACKAGES = ["torch-lucent==0.1.8", "horama==0.3.0"]
PEER_DEPENDENCIES = ["torch==2.13.0", "kornia==0.4.1", "numpy", "tqdm", "pillow", "ipython", "decorator",
                     "matplotlib", "einops"]


# ------------------------------------------------------------------------------------------------ shared parts

def make_model() -> nn.Module:
    """A seeded CNN, 3x128x128 -> 64 channels at 1/8 resolution; frozen, eval mode (same in both environments)."""
    generator = torch.Generator().manual_seed(0)

    def block(c_in: int, c_out: int) -> nn.Sequential:
        conv = nn.Conv2d(c_in, c_out, 3, padding=1, stride=2)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / (9 * c_in)) ** 0.5)
            conv.bias.zero_()
        return nn.Sequential(conv, nn.ReLU())

    model = nn.Sequential()
    for name, (c_in, c_out) in zip(["block1", "block2", "block3", "block4"], [(3, 16), (16, 32), (32, 64), (64, 64)],
                                   strict=True):
        model.add_module(name, block(c_in, c_out))
    return model.eval().requires_grad_(False)


def channel_mean(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The objective: mean of channel ``CHANNEL`` of ``LAYER``, per image (through a forward hook)."""
    store: dict[str, torch.Tensor] = {}
    handle = getattr(model, LAYER).register_forward_hook(lambda m, a, out: store.__setitem__("a", out))
    try:
        model(images)
    finally:
        handle.remove()
    return store["a"][:, CHANNEL].mean(dim=(1, 2))


def bare_loop(model: nn.Module, n_images: int, size: int, steps: int) -> None:
    """A forward and backward of ``n_images`` images and an Adam step: the floor every method pays."""
    x = torch.rand(n_images, 3, size, size, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        (-channel_mean(model, x).sum()).backward()
        optimizer.step()


def measure(method, n_images: int, size: int, steps: int, repeats: int) -> dict[str, float]:
    """Best-of-``repeats`` seconds of ``method(steps)`` and of the bare loop, interleaved; the last image's value."""
    model = make_model()
    method(model, 2)  # warm-up both
    bare_loop(model, n_images, size, 2)
    best_method = best_bare = float("inf")
    image = None
    for _ in range(repeats):
        start = time.perf_counter()
        image = method(model, steps)
        best_method = min(best_method, time.perf_counter() - start)
        start = time.perf_counter()
        bare_loop(model, n_images, size, steps)
        best_bare = min(best_bare, time.perf_counter() - start)
    with torch.no_grad():
        activation = float(channel_mean(model, image).mean())
    return {"ms_per_step": 1000 * best_method / steps, "bare_ms_per_step": 1000 * best_bare / steps,
            "ratio": best_method / best_bare, "activation": activation}


# ------------------------------------------------------------------------------------------------ the peers

def run_peers(steps: int, repeats: int, size: int) -> dict[str, dict[str, float]]:
    """Runs inside the peers' environment; returns the peers' rows."""
    import numpy as np
    from horama import fourier, maco
    from lucent.optvis import objectives, param, render, transform

    def lucent_fft(model: nn.Module, n_steps: int) -> torch.Tensor:
        params, image_f = param.image(size, fft=True, decorrelate=True)
        render.render_vis(model, objectives.channel(LAYER, CHANNEL), lambda: (params, image_f),
                          transforms=transform.standard_transforms, thresholds=(n_steps,), preprocess=False,
                          progress=False, show_image=False, fixed_image_size=size)
        return image_f().detach()

    def horama_kwargs(n_steps: int) -> dict:
        return {"total_steps": n_steps, "image_size": size, "model_input_size": size, "crops_per_iteration": 6,
                "box_size": (0.8, 0.9), "values_range": (0.0, 1.0), "device": "cpu"}

    def horama_maco(model: nn.Module, n_steps: int) -> torch.Tensor:
        image, _ = maco(lambda images: channel_mean(model, images).mean(), **horama_kwargs(n_steps))
        return image.detach()[None]

    def horama_fourier(model: nn.Module, n_steps: int) -> torch.Tensor:
        image, _ = fourier(lambda images: channel_mean(model, images).mean(), **horama_kwargs(n_steps))
        return image.detach()[None]

    # Horama reads its MACO magnitude from this file (it would download it): write MACO's 1/f default there
    from horama.maco_fv import MACO_SPECTRUM_FILENAME
    frequency = torch.sqrt(torch.fft.fftfreq(size)[:, None] ** 2 + torch.fft.rfftfreq(size)[None] ** 2)
    np.save(MACO_SPECTRUM_FILENAME, (1.0 / frequency.clamp_min(1.0 / size)).expand(3, -1, -1).numpy())
    return {
        "lucent render_vis (fft, decorrelated, standard transforms)": measure(lucent_fft, 1, size, steps, repeats),
        "Horama maco (6 crops per step)": measure(horama_maco, 6, size, steps, repeats),
        "Horama fourier (6 crops per step)": measure(horama_fourier, 6, size, steps, repeats),
    }


def run_ours(steps: int, repeats: int, size: int) -> dict[str, dict[str, float]]:
    sys.path.insert(0, str(HERE.parent.parent))
    from mei.featurevis import render_vis
    from mei.transforms import GaussianNoise, RandomAffine

    target = f"{LAYER}:{CHANNEL}"

    def ours(param: str, views: int, transforms, lr: float | None = None):
        def method(model: nn.Module, n_steps: int) -> torch.Tensor:
            return render_vis(model, target, param=param, size=size, steps=n_steps, views=views,
                              transforms=transforms, lr=lr, progress=False).images
        return method

    crops = [RandomAffine(1.0, 1.25, 0.0, max_shift=0.15 * size), GaussianNoise(0.05)]  # ~ Horama's boxes, noise
    return {
        "mei render_vis (fft, decorrelated, standard transforms)": measure(ours("fft", 1, "standard"), 1, size,
                                                                            steps, repeats),
        "mei render_vis (maco, 6 views per step)": measure(ours("maco", 6, crops), 6, size, steps, repeats),
        "mei render_vis (fft, 6 views per step)": measure(ours("fft", 6, crops), 6, size, steps, repeats),
    }


# ------------------------------------------------------------------------------------------------ environment

def peers_venv() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "mei-benchmarks" / "peers-venv"


STAND_IN = {
    "__init__.py": '"""Stand-in for torchvision (mei benchmarks/featurevis_peers.py): what the peers import."""\n'
                   "from . import datasets, ops, transforms\n__version__ = '0.28.0+stand-in'\n",
    "transforms.py": (
        "import torch\n\n\nclass Normalize(torch.nn.Module):\n"
        "    def __init__(self, mean, std, inplace=False):\n        super().__init__()\n"
        "        self.mean, self.std = mean, std\n\n    def forward(self, x):\n"
        "        mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)\n"
        "        std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)\n"
        "        return (x - mean) / std\n"),
    "ops.py": (
        "import math\n\nimport torch\nimport torch.nn.functional as F\n\n\n"
        "def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):\n"
        "    \"\"\"torchvision's roi_align semantics (bilinear, pixel i at coordinate i when aligned=False).\"\"\"\n"
        "    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size\n"
        "    height, width = input.shape[-2:]\n    offset = 0.5 if aligned else 0.0\n    crops = []\n"
        "    for box in boxes:\n"
        "        index, x1, y1, x2, y2 = [float(v) for v in box]\n"
        "        x1, y1, x2, y2 = (x1 * spatial_scale - offset, y1 * spatial_scale - offset,\n"
        "                          x2 * spatial_scale - offset, y2 * spatial_scale - offset)\n"
        "        roi_w, roi_h = (x2 - x1, y2 - y1) if aligned else (max(x2 - x1, 1.0), max(y2 - y1, 1.0))\n"
        "        g_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)\n"
        "        g_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)\n"
        "        ys = y1 + (torch.arange(out_h * g_h, dtype=input.dtype) + 0.5) * roi_h / (out_h * g_h)\n"
        "        xs = x1 + (torch.arange(out_w * g_w, dtype=input.dtype) + 0.5) * roi_w / (out_w * g_w)\n"
        "        gy, gx = torch.meshgrid(2 * ys / (height - 1) - 1, 2 * xs / (width - 1) - 1, indexing='ij')\n"
        "        grid = torch.stack([gx, gy], dim=-1)[None].to(input.device)\n"
        "        sample = F.grid_sample(input[int(index):int(index) + 1], grid, mode='bilinear',\n"
        "                               padding_mode='border', align_corners=True)\n"
        "        crops.append(F.avg_pool2d(sample, (g_h, g_w)) if g_h * g_w > 1 else sample)\n"
        "    return torch.cat(crops)\n"),
    "datasets/__init__.py": "from . import utils\n",
    "datasets/utils.py": ("def download_url(url, root, filename=None, md5=None, max_redirect_hops=3):\n"
                          "    raise RuntimeError(f'the benchmark downloads nothing; {filename} must exist')\n"),
}


def ensure_peers_venv() -> Path:
    """Create (once) the peers' environment; returns its Python."""
    venv = peers_venv()
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    wanted = json.dumps([PEER_DEPENDENCIES, PEER_PACKAGES])
    if not (stamp.exists() and stamp.read_text() == wanted):
        print(f"creating the peers' environment in {venv} (once; a few minutes)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *PEER_DEPENDENCIES], check=True)
        subprocess.run([*pip, "--no-deps", *PEER_PACKAGES, "torch==2.13.0"], check=True)
        stamp.write_text(wanted)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    for name, text in STAND_IN.items():
        path = Path(site) / "torchvision" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)  # rewritten every run (cheap), so the stand-in is always this script's
    return python


def peer_results(steps: int, repeats: int, size: int, threads: int) -> dict[str, dict[str, float]]:
    python = ensure_peers_venv()
    import tempfile

    with tempfile.TemporaryDirectory() as work:  # Horama writes its spectrum file into the working directory
        result = subprocess.run([str(python), str(HERE), "--peer-run", "--steps", str(steps), "--repeats",
                                 str(repeats), "--size", str(size), "--threads", str(threads)],
                                check=True, capture_output=True, text=True, cwd=work)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/benchmarks.md")
    parser.add_argument("--peer-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.peer_run:
        print(json.dumps(run_peers(args.steps, args.repeats, args.size)))
        return
    peers = peer_results(args.steps, args.repeats, args.size, args.threads)
    ours = run_ours(args.steps, args.repeats, args.size)
    write(peers, ours, args)


def write(peers: dict, ours: dict, args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE.parent.parent))
    from benchmarks._report import write_section

    rows = []
    pairs = [("lucent", "lucent render_vis (fft, decorrelated, standard transforms)",
              "mei render_vis (fft, decorrelated, standard transforms)"),
             ("Horama", "Horama maco (6 crops per step)", "mei render_vis (maco, 6 views per step)"),
             ("Horama", "Horama fourier (6 crops per step)", "mei render_vis (fft, 6 views per step)")]
    for _, peer, mine in pairs:
        for name, row in ((peer, peers[peer]), (mine, ours[mine])):
            rows.append(f"| {name} | {row['bare_ms_per_step']:.2f} | {row['ms_per_step']:.2f} | "
                        f"**{row['ratio']:.2f}** | {row['activation']:.4f} |")
    threads = torch.get_num_threads()
    markdown = "\n".join([
        "## Feature visualization against torch-lucent and Horama (cpu)", "",
        f"`python benchmarks/featurevis_peers.py --steps {args.steps} --repeats {args.repeats} --size {args.size}`: "
        f"a seeded 4-layer CNN, objective the mean of channel {CHANNEL} of `{LAYER}`, {args.size}x{args.size} images, "
        f"{args.steps} steps, each method with its defaults (lucent: Adam 0.05; Horama: NAdam 1.0 on its "
        "standardized spectrum or phase; mei: Adam at `DEFAULT_LR`); each method "
        "against a bare loop (forward + backward of as "
        "many images per step, Adam) in its own process, interleaved, best of the repeats, "
        f"{threads} CPU thread(s). The peers run in their own environment (torch 2.13.0 CPU, torch-lucent 0.1.8, "
        "horama 0.3.0, kornia 0.4.1) with a stand-in torchvision (the CPU build of torchvision for torch 2.13 is "
        "not on the package index; see the script's docstring). Activation: the objective on the final image "
        "without transforms.", "",
        "| method | bare loop ms/step | ms/step | ratio to its bare loop | final activation |",
        "|---|---|---|---|---|", *rows,
    ])
    if not args.no_write:
        write_section("featurevis_peers_cpu", markdown)
    print(markdown)


if __name__ == "__main__":
    main()
