"""Regenerate docs/images/featurevis_parameterizations.png: ``mei.featurevis.render_vis`` with each
parameterization on the same model and channel, side by side, and MACO's transparency map (seeded).

Run from the repository root: ``python docs/featurevis_figure.py``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mei.featurevis import PARAMETERIZATIONS, render_vis  # noqa: E402
from mei.optim import save_image  # noqa: E402

OUT = ROOT / "docs" / "images" / "featurevis_parameterizations.png"
TARGET = "combine:3"


class ColourGabors(nn.Module):
    """Colour-opponent Gabor filters at four orientations (9x9), ReLU, 2x2 pooling, a seeded 1x1 combination."""

    def __init__(self) -> None:
        super().__init__()
        r = torch.arange(9, dtype=torch.float32) - 4
        y, x = torch.meshgrid(r, r, indexing="ij")
        colours = torch.tensor([[1.0, -1.0, 0.0], [-0.5, -0.5, 1.0]])
        filters = []
        for k in range(4):
            u = x * math.cos(math.pi * k / 4) + y * math.sin(math.pi * k / 4)
            envelope = torch.exp(-(x**2 + y**2) / (2 * 2.5**2)) * torch.cos(2 * math.pi * u / 6)
            filters += [colour.view(3, 1, 1) * envelope for colour in colours]
        self.edges = nn.Conv2d(3, 8, 9, padding=4, bias=False)
        self.edges.weight.data.copy_(torch.stack(filters))
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.combine = nn.Conv2d(8, 4, 1)
        generator = torch.Generator().manual_seed(0)
        self.combine.weight.data.copy_(torch.randn(self.combine.weight.shape, generator=generator))
        self.combine.bias.data.zero_()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.pool(self.relu(self.edges(x - 0.5))))


def main() -> None:
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    model = ColourGabors().eval()
    pictures, lines = [], []
    transparency = None
    for param in PARAMETERIZATIONS:
        out = render_vis(model, TARGET, param=param, size=64, steps=256, seed=0, progress=False)
        pictures.append(out.images)
        lines.append(f"{param}: final objective {float(out.history[-1, 0]):.3f}")
        if out.transparency is not None:
            transparency = out.transparency.sum(dim=1, keepdim=True)
            transparency = (transparency / transparency.amax()).expand(-1, 3, -1, -1)
    assert transparency is not None
    OUT.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat([*pictures, transparency]), str(OUT), images_per_row=5, upscale=2)
    print("\n".join(lines))
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
