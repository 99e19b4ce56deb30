"""Feature visualization beyond captum.optim, lucent and Horama, on the project's one engine.

* :func:`render_vis` — lucent's one-liner: ``render_vis(model, "layer:channel")`` returns the images and the
  objective history (:mod:`~mei.featurevis.render`; target strings in :mod:`~mei.featurevis.targets`);
* :class:`MACOImage` — magnitude-constrained optimization (Fel et al. 2023): only the Fourier phase is
  optimized, the magnitude spectrum is a natural-image one, with MACO's transparency map (:mod:`~mei.featurevis.maco`);
* :func:`accentuate` — feature accentuation (Hamblin et al. 2024): drive a feature in a real image while
  staying close to it in a layer's space (:mod:`~mei.featurevis.accentuation`);
* :class:`CPPNImage` — lucent's CPPN parameterization (:mod:`~mei.featurevis.cppn`).

Several views per step are the engine's own (:class:`mei.transforms.Views`), usable from any method config.
"""

from .accentuation import Accentuation, accentuate
from .cppn import CPPNImage
from .maco import MACOImage, natural_magnitude, power_law_magnitude
from .render import PARAMETERIZATIONS, Visualization, render_vis, standard_transforms
from .targets import TargetObjective, parse_target

__all__ = [
    "render_vis", "Visualization", "standard_transforms", "PARAMETERIZATIONS", "MACOImage", "natural_magnitude",
    "power_law_magnitude", "CPPNImage", "accentuate", "Accentuation", "TargetObjective", "parse_target",
]
