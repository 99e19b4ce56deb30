"""Batched many-unit generation: MEIs/second and peak memory for K MEIs per batch vs one run per MEI.

Part 1 (every device): K = 1, 8, 64 keys (units of one model, one seed each) by
:func:`mei.batched.gradient_ascent_batched` vs sequential :func:`mei.methods.gradient_ascent` runs, same
config, same process. Sequential throughput is measured over ``--sequential`` runs (it is per MEI, so it
does not depend on K). Peak memory is CUDA's ``max_memory_allocated`` on the GPU and the growth of the
process's peak resident set (``VmHWM``, reset between measurements) on the CPU.

Part 2 (CUDA, or ``--lab``): lab scale, a 1x64x64 input, a 5-member ensemble of 3-layer CNN cores with a
point readout of 1,000 units, SGD + Gaussian-blurred gradient + norm constraint: the largest K that fits
(doubling until out of memory, 2-step runs) and MEIs/hour at 1,000 steps, extrapolated from the per-step
time of ``--lab-steps`` steps (steady state: with ``NumIterations`` every step costs the same), plus the
effect of bfloat16 autocast, ``torch.compile``, channels-last and the fused ensemble at one K.

Fusion table (every device): ``fuse_ensemble`` (grouped and dense) vs member-by-member on a 5-member ensemble of
small cores.
``--profile OPTION`` adds ``torch.profiler``'s most expensive kernels of a few lab-scale steps.
Layer table (CUDA, or ``--conv-k K``): one 32->32, 5x5 core layer of the five members (the lab model's FLOPs are
almost all in two such layers), forward + input gradient four ways: member by member, grouped (what the fused
ensemble runs), one dense block-diagonal convolution (5x the FLOPs, but a shape cuDNN runs far better) and FFT,
in float32 and bfloat16, NCHW and channels-last, with the useful TFLOP/s each reaches.

Run: ``python benchmarks/batched.py [--device cuda] [--steps N] [--ks 1,8,64] [--lab] [--profile fast]
[--no-write]``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._report import write_section
from mei.batched import (
    cudnn_benchmark,
    gradient_ascent_batched,
)
from mei.methods import gradient_ascent, recording
from mei.modules import ConstrainedOutputModel, EnsembleModel


class PointReadout(nn.Module):
    """Each unit reads the core's features at one (learned) position: ``(N, C, H, W) -> (N, units)``."""

    def __init__(self, channels: int, n_units: int, generator: torch.Generator) -> None:
        super().__init__()
        self.register_buffer("grid", torch.rand(1, n_units, 1, 2, generator=generator) * 1.6 - 0.8)
        self.register_buffer("features", torch.randn(n_units, channels, generator=generator) / channels**0.5)

    def forward(self, core: torch.Tensor) -> torch.Tensor:
        grid = self.grid.expand(core.shape[0], -1, -1, -1)
        sampled = F.grid_sample(core, grid, align_corners=False)[..., 0]  # (N, C, units)
        return torch.einsum("ncu,uc->nu", sampled, self.features)


def cnn(channels: int, kernels: tuple[int, ...], n_units: int, seed: int) -> nn.Module:
    """A conv core (ELU between layers, 'same' padding) with a point readout; frozen, eval mode."""
    generator = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    in_channels = 1
    for kernel in kernels:
        conv = nn.Conv2d(in_channels, channels, kernel, padding=kernel // 2)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) / (in_channels * kernel**2) ** 0.5)
            conv.bias.zero_()
        layers += [conv, nn.ELU()]
        in_channels = channels
    model = nn.Sequential(*layers, PointReadout(channels, n_units, generator))
    return model.eval().requires_grad_(False)


def small_model() -> nn.Module:
    """CPU scale: 1x32x32 input, 3 conv layers of 8 channels (kernels 5, 3, 3), 100 units."""
    return cnn(8, (5, 3, 3), 100, seed=0)


def lab_model(members: int = 5) -> nn.Module:
    """Lab scale: 1x64x64, a 5-member ensemble of 3-layer cores (32 channels, kernels 9, 5, 5), 1,000 units."""
    return EnsembleModel(*[cnn(32, (9, 5, 5), 1000, seed=m) for m in range(members)])


def method_config(device: str, size: int, steps: int, chunk_size: int = 100_000, **batch: Any) -> dict[str, Any]:
    return {
        "device": device, "shape": [1, 1, size, size],
        "initial": {"path": "mei.initial.RandomNormal", "kwargs": {"std": 0.1}},
        "optimizer": {"path": "torch.optim.SGD", "kwargs": {"lr": 1.0}},
        "precondition": {"path": "mei.preconditioners.GaussianBlur", "kwargs": {"sigma": 1.0}},
        "postprocessing": {"path": "mei.postprocessing.ChangeNorm", "kwargs": {"norm": float(size)}},
        "stopper": {"path": "mei.stoppers.NumIterations", "kwargs": {"num_iterations": steps}},
        "batch": {"chunk_size": chunk_size, **batch},
    }


# --------------------------------------------------------------------------------------------- measurement


def _reset_peak(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device)
    try:  # Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
        return _rss("VmHWM")
    except OSError:
        return 0


def _rss(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) * 1024 if match else 0


def _peak(device: torch.device, base: int) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    return max(0, _rss("VmHWM") - base)


def measure(run: Callable[[], Any], device: torch.device, repeats: int = 1) -> tuple[float, int, Any]:
    """``(seconds, peak bytes above the start, result)`` of ``run``: the fastest of ``repeats`` calls."""
    best = None
    for _ in range(repeats):
        base = _reset_peak(device)
        start = time.perf_counter()
        result = run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        if best is None or seconds < best[0]:
            best = (seconds, _peak(device, base), result)
    return best


def max_difference(results: list[Any], reference: list[Any]) -> str:
    """Largest |batched - sequential| over the MEIs both produced, and the largest |MEI| for scale."""
    pairs = list(zip(results, reference, strict=True))
    diff = max(float((a[0] - b[0]).abs().max()) for a, b in pairs)
    scale = max(float(b[0].abs().max()) for _, b in pairs)
    return f"max |batched - sequential| over {len(pairs)} MEIs: {diff:.2e} (largest |MEI| value {scale:.2f})"


def sequential(model: nn.Module, config: dict[str, Any], n: int) -> Callable[[], Any]:
    return lambda: [gradient_ascent(None, ConstrainedOutputModel(model, k), config, k) for k in range(n)]


def batched(model: nn.Module, config: dict[str, Any], k: int) -> Callable[[], Any]:
    return lambda: gradient_ascent_batched(
        None, [ConstrainedOutputModel(model, u % 1000) for u in range(k)], config, list(range(k))
    )


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f}"


# ------------------------------------------------------------------------------------------------- parts


def throughput_table(model: nn.Module, device: str, size: int, steps: int, ks: list[int], n_seq: int,
                     repeats: int = 1) -> str:
    """Part 1: MEIs/s of sequential runs and of batches of K, with peak memory; markdown."""
    dev = torch.device(device)
    config = method_config(device, size, steps)
    measure(batched(model, method_config(device, size, 2), 2), dev)  # warm-up (allocator, kernels)
    seconds, peak, reference = measure(sequential(model, config, n_seq), dev, repeats)
    seq_rate = n_seq / seconds
    rows = [f"| sequential ({n_seq} runs) | {seq_rate:.2f} | 1.0x | {_mib(peak)} |"]
    check = ""
    for k in ks:
        seconds, peak, results = measure(batched(model, config, k), dev, repeats)
        rows.append(f"| batched K={k} | {k / seconds:.2f} | {k / seconds / seq_rate:.1f}x | {_mib(peak)} |")
        print(rows[-1], flush=True)
        check = check or (max_difference(results, reference) if k >= n_seq else "")
    table = "\n".join(["| run | MEIs/s | vs sequential | peak memory (MiB) |", "|---|---|---|---|", *rows])
    return table + (f"\n\nSame keys and seeds, {check}." if check else "")


def largest_k(model: nn.Module, device: str, size: int, start: int, cap: int, **batch: Any) -> int:
    """Double K from ``start`` until a 2-step run runs out of memory (or ``cap``); the last K that fit."""
    fits, k = 0, start
    while k <= cap:
        config = method_config(device, size, 2, chunk_size=k, **batch)
        try:
            with recording() as info:  # the method halves a chunk that runs out of memory: check it did not
                measure(batched(model, config, k), torch.device(device))
        except torch.OutOfMemoryError:
            break
        finally:
            torch.cuda.empty_cache()
        if info.get("chunk_size") != k:
            break
        fits, k = k, 2 * k
    return fits


def per_step_seconds(model: nn.Module, device: str, size: int, k: int, steps: int, **batch: Any) -> tuple[
        float, int]:
    """Per-step time of a batch of ``k`` (difference of a ``steps`` run and a 2-step run) and its peak memory."""
    dev = torch.device(device)
    measure(batched(model, method_config(device, size, 2, chunk_size=k, **batch), k), dev)  # warm-up / compile
    short, _, _ = measure(batched(model, method_config(device, size, 2, chunk_size=k, **batch), k), dev)
    long, peak, _ = measure(batched(model, method_config(device, size, steps, chunk_size=k, **batch), k), dev)
    return (long - short) / (steps - 2), peak


ACCELERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "autocast": ("bfloat16 autocast", {"autocast": "bfloat16"}),
    "compile": ("torch.compile", {"compile": True}),
    "channels_last": ("channels-last + cuDNN autotuning", {"channels_last": True, "cudnn_benchmark": True}),
    "fast": ("bfloat16 + channels-last + cuDNN autotuning",
             {"autocast": "bfloat16", "channels_last": True, "cudnn_benchmark": True}),
    "fuse": ("fused ensemble", {"fuse_ensemble": True}),
    "fast_autotune": ("bfloat16 + channels-last + torch.compile max-autotune",
                      {"autocast": "bfloat16", "channels_last": True, "compile": "max-autotune-no-cudagraphs"}),
    "fast_fuse": ("bfloat16 + channels-last + cuDNN autotuning + fused ensemble",
                  {"autocast": "bfloat16", "channels_last": True, "cudnn_benchmark": True, "fuse_ensemble": True}),
    "fast_dense": ("bfloat16 + channels-last + cuDNN autotuning + dense fused ensemble",
                   {"autocast": "bfloat16", "channels_last": True, "cudnn_benchmark": True,
                    "fuse_ensemble": "dense"}),
}


def _lab_row(device: str, k: int, steps: int, name: str, **batch: Any) -> str:
    try:
        step, peak = per_step_seconds(lab_model(), device, 64, k, steps, **batch)
        row = f"| {k} | {name} | {step * 1e3:.2f} | {3600 * k / (1000 * step):,.0f} | {_mib(peak)} |"
    except Exception as error:  # noqa: BLE001 - report, do not hide, an option that fails here
        row = f"| {k} | {name} | failed: {type(error).__name__}: {str(error)[:80]} | | |"
    print(row, flush=True)
    return row


def lab_scale(device: str, steps: int, ks: list[int], cap: int, options: list[str]) -> str:
    """Part 2: largest K, MEIs/hour at 1,000 steps, each acceleration (fresh model each); markdown."""
    k_max = largest_k(lab_model(), device, 64, start=max(ks), cap=cap)
    print(f"largest K that fits: {k_max}", flush=True)
    rows = [_lab_row(device, k, steps, "float32") for k in sorted({*ks, k_max} - {0})]
    rows += [_lab_row(device, max(ks), steps, ACCELERATIONS[o][0], **ACCELERATIONS[o][1])
             for o in options if o in ACCELERATIONS]
    text = f"Largest K that fits in float32: **{k_max}** (doubling from {max(ks)}, cap {cap})."
    if "fast" in options:
        name, batch = ACCELERATIONS["fast"]
        k_fast = largest_k(lab_model(), device, 64, start=max(ks), cap=cap, **batch)
        text += f" With {name}: **{k_fast}**."
        if k_fast and k_fast != max(ks):
            rows.append(_lab_row(device, k_fast, steps, name, **batch))
    header = ["| K | precision / options | ms/step | MEIs/hour (1,000 steps) | peak memory (MiB) |",
              "|---|---|---|---|---|"]
    return text + "\n\n" + "\n".join(header + rows)


def fusion_table(device: str, k: int, steps: int, repeats: int) -> str:
    """``fuse_ensemble`` (grouped and dense) vs the member-by-member ensemble, 5 small cores, interleaved."""
    model = EnsembleModel(*[cnn(8, (5, 3, 3), 100, seed=m) for m in range(5)])
    dev = torch.device(device)
    kinds = {"member by member": False, "fused (`fuse_ensemble: true`)": True,
             "fused, dense (`fuse_ensemble: \"dense\"`)": "dense"}
    times: dict[str, list[float]] = {name: [] for name in kinds}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fuse in kinds.items():
            seconds, _, results[name] = measure(batched(model, method_config(device, 32, steps, fuse_ensemble=fuse),
                                                        k), dev)
            times[name].append(seconds)
    loop = min(times["member by member"])
    rows = []
    for name in kinds:
        best = min(times[name])
        diff = max(float((a[0] - b[0]).abs().max())
                   for a, b in zip(results["member by member"], results[name], strict=True))
        rows.append(f"| {name} | {best:.2f} | {k / best:.2f} | {loop / best:.2f}x | {diff:.1e} |")
    return (f"5-member ensemble of small CNN cores (8 channels, kernels 5/3/3, 100 units), 1x32x32, K={k}, {steps} "
            f"steps, fastest of {repeats} interleaved runs:\n\n| ensemble | s per batch | MEIs/s | throughput vs "
            f"member by member | max abs difference of the MEIs |\n|---|---|---|---|---|\n" + "\n".join(rows))


def _fft_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """'Same'-padded cross-correlation of ``x`` with ``weight`` (odd square kernels) through the FFT; float32."""
    kernel, (height, width) = weight.shape[-1], x.shape[-2:]
    size = (height + kernel - 1, width + kernel - 1)
    spectrum = torch.fft.rfft2(x.float(), s=size)  # (N, C, S, T)
    kernels = torch.fft.rfft2(weight.float().flip(-1, -2), s=size)  # (O, C, S, T)
    mixed = torch.einsum("ncst,ocst->nost", spectrum, kernels)
    offset = kernel // 2
    return torch.fft.irfft2(mixed, s=size)[..., kernel - 1 - offset:kernel - 1 - offset + height,
                                           kernel - 1 - offset:kernel - 1 - offset + width]


def conv_variants(members: int, channels: int, kernel: int, generator: torch.Generator) -> dict[str, Callable]:
    """One lab core layer (``channels -> channels``, ``kernel``) of every member, computed four ways.

    Each variant maps the members' inputs stacked along channels, ``(K, members * channels, H, W)``, to their
    outputs stacked the same way; all four give the same values (up to float rounding).
    """
    weights = [torch.randn(channels, channels, kernel, kernel, generator=generator) / (channels * kernel**2) ** 0.5
               for _ in range(members)]
    grouped = torch.cat(weights)  # (members * channels, channels, k, k)
    dense = torch.zeros(members * channels, members * channels, kernel, kernel)
    for m, weight in enumerate(weights):
        dense[m * channels:(m + 1) * channels, m * channels:(m + 1) * channels] = weight
    pad = kernel // 2

    def member_by_member(x: torch.Tensor) -> torch.Tensor:
        parts = zip(x.chunk(members, 1), weights, strict=True)
        return torch.cat([F.conv2d(part, w.to(part), padding=pad) for part, w in parts], 1)

    def fft(x: torch.Tensor) -> torch.Tensor:
        parts = zip(x.chunk(members, 1), weights, strict=True)
        return torch.cat([_fft_conv(part, w.to(part.device)) for part, w in parts], 1)

    return {
        "member by member (5 convs)": member_by_member,
        "grouped (what fuse_ensemble runs)": lambda x: F.conv2d(x, grouped.to(x), padding=pad, groups=members),
        "dense block-diagonal (5x the FLOPs)": lambda x: F.conv2d(x, dense.to(x), padding=pad),
        "FFT, float32": fft,
    }


def _forward_and_input_grad(conv: Callable[[torch.Tensor], torch.Tensor],
                            x: torch.Tensor) -> Callable[[], torch.Tensor]:
    """A step for :func:`measure`: ``conv(x)`` and the gradient of its sum with respect to ``x``; returns the output."""

    def step() -> torch.Tensor:
        out = conv(x)
        torch.autograd.grad(out, x, torch.ones_like(out))
        return out

    return step


def conv_table(device: str, k: int, repeats: int, size: int = 64, members: int = 5, channels: int = 32,
               kernel: int = 5) -> str:
    """Forward + input gradient of one lab core layer for K images, four ways, float32 (and bf16 on CUDA); markdown.

    Useful work is the members' own convolutions (2 x K x H x W x C x C x k^2 multiply-adds per member and
    pass); TFLOP/s counts only that, so the dense variant's zero blocks earn nothing.
    """
    dev = torch.device(device)
    variants = conv_variants(members, channels, kernel, torch.Generator().manual_seed(0))
    x0 = torch.randn(k, members * channels, size, size, generator=torch.Generator().manual_seed(1)).to(dev)
    flops = 2 * 2 * members * k * size * size * channels * channels * kernel**2
    reference = variants["member by member (5 convs)"](x0)
    rows = []
    for dtype in (torch.float32, torch.bfloat16) if dev.type == "cuda" else (torch.float32,):  # CPU bf16 convs crawl
        for layout in (torch.contiguous_format, torch.channels_last):
            for name, conv in variants.items():
                if dtype is torch.bfloat16 and name.startswith("FFT"):
                    continue
                step = _forward_and_input_grad(conv, x0.to(dtype).contiguous(memory_format=layout).requires_grad_(True))
                try:
                    with cudnn_benchmark(dev.type == "cuda"):
                        step()  # warm-up (and the cuDNN algorithm search)
                        seconds, _, out = measure(step, dev, repeats)
                    error = float((out.detach().float() - reference).abs().max() / reference.abs().max())
                    rows.append(f"| {str(dtype)[6:]} | {'channels-last' if layout is torch.channels_last else 'NCHW'}"
                                f" | {name} | {seconds * 1e3:.2f} | {flops / seconds / 1e12:.3g} | {error:.0e} |")
                except RuntimeError as failure:  # e.g. out of memory: report it
                    rows.append(f"| {str(dtype)[6:]} | | {name} | failed: {str(failure)[:60]} | | |")
                print(rows[-1], flush=True)
    header = ["| dtype | layout | variant | ms (fwd + input grad) | useful TFLOP/s | max rel. error |",
              "|---|---|---|---|---|---|"]
    autotune = ", cuDNN autotuning on" if dev.type == "cuda" else ""
    return (f"One {channels}->{channels} channel, {kernel}x{kernel} layer of each of {members} members, K={k} "
            f"images of {size}x{size}{autotune}; fastest of {repeats}:\n\n" + "\n".join(header + rows))


def profile_table(device: str, k: int, steps: int, **batch: Any) -> str:
    """The most expensive kernels of ``steps`` lab-scale steps at ``k`` (``torch.profiler``); a text block."""
    from torch.profiler import ProfilerActivity, profile  # only for --profile

    run = batched(lab_model(), method_config(device, 64, steps, chunk_size=k, **batch), k)
    run()  # warm-up: allocator, cuDNN algorithm choice
    cuda = device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        run()
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=60)
    options = ", ".join(f"{name}={value}" for name, value in batch.items()) or "float32"
    return f"Profile of {steps} lab-scale steps at K={k} ({options}), by self {device} time:\n\n```text\n{table}\n```"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="steps per MEI in part 1 (cpu 20, cuda 100)")
    parser.add_argument("--ks", default="1,8,64")
    parser.add_argument("--sequential", type=int, default=8, help="sequential runs measured")
    parser.add_argument("--repeats", type=int, default=None, help="fastest of N runs in part 1 (cpu 3, cuda 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--lab", action="store_true", help="run part 2 on this device too (default: CUDA only)")
    parser.add_argument("--lab-steps", type=int, default=30)
    parser.add_argument("--lab-ks", default="256,1024")
    parser.add_argument("--lab-cap", type=int, default=16384)
    parser.add_argument("--options", default="autocast,compile,channels_last,fast,fuse,fast_fuse,fast_dense",
                        help="accelerations to measure in part 2 (see ACCELERATIONS)")
    parser.add_argument("--fusion-k", type=int, default=64, help="K of the ensemble-fusion table (0: skip it)")
    parser.add_argument("--conv-k", type=int, default=None,
                        help="K of the layer-variants table (default: 1024 on CUDA, skipped elsewhere; 0: skip)")
    parser.add_argument("--profile", default=None, metavar="OPTION",
                        help="also profile lab-scale steps: 'float32' or an ACCELERATIONS name")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (100 if cuda else 20)
    repeats = args.repeats or (1 if cuda else 3)
    ks = [int(k) for k in args.ks.split(",")]
    model, size, label = (lab_model(), 64, "lab model (below)") if cuda else (small_model(), 32, "small CNN")
    parts = [
        f"### {args.device}: K MEIs per batch vs one run per MEI\n\n{label}, 1x{size}x{size} input, {steps} steps "
        f"per MEI, SGD + GaussianBlur + ChangeNorm; command `python benchmarks/batched.py --device {args.device}`."
        f" Fastest of {repeats} run(s) each, {torch.get_num_threads()} CPU thread(s)."
        f"\n\n" + throughput_table(model, args.device, size, steps, ks, args.sequential, repeats)
    ]
    if args.fusion_k:
        table = fusion_table(args.device, args.fusion_k, steps, repeats)
        parts.append(f"### {args.device}: fused ensemble\n\n{table}")
        print(parts[-1], flush=True)
    conv_k = args.conv_k if args.conv_k is not None else (1024 if cuda else 0)
    if conv_k:
        parts.append(f"### {args.device}: one core layer, four ways\n\n" + conv_table(args.device, conv_k, repeats=3))
    if cuda or args.lab:
        lab_ks = [int(k) for k in args.lab_ks.split(",")]
        parts.append(
            "### Lab scale: 1x64x64, 5-member ensemble (3-layer cores, 32 channels, kernels 9/5/5, point readout "
            f"of 1,000 units), 1,000 steps\n\nMEIs/hour = 3600 K / (1000 x per-step time measured over "
            f"{args.lab_steps} steps).\n\n" + lab_scale(args.device, args.lab_steps, lab_ks, args.lab_cap,
                                                       args.options.split(","))
        )
    if args.profile:
        batch = {} if args.profile == "float32" else ACCELERATIONS[args.profile][1]
        parts.append(f"### {args.device}: where a lab-scale step goes\n\n"
                     + profile_table(args.device, int(args.lab_ks.split(",")[-1]), 5, **batch))
    markdown = "\n\n".join(parts)
    print(markdown)
    if not args.no_write:
        write_section(f"batched-{'cuda' if cuda else 'cpu'}", f"## Batched generation ({args.device})\n\n" + markdown)


def _own_arguments(argv: list[str]) -> list[str]:
    """``argv`` without the benchmark names ``python -m benchmarks batched ...`` leaves in front."""
    while argv and not argv[0].startswith("-"):
        argv = argv[1:]
    return argv


if __name__ == "__main__":
    main(_own_arguments(sys.argv[1:]))
