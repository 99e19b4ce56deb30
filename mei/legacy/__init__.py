"""sinzlab/mei's ``mei.legacy`` sub-package (Erick Cobos's "featurevis" code) at its import path.

* :mod:`mei.legacy.ops` — the operations configs name (``mei.legacy.ops.GaussianBlur``, ``ChangeNorm``, …),
  declared components of this package;
* :mod:`mei.legacy.utils` — ``varargin``, ``Compose``, ``Combine``;
* :mod:`mei.legacy.core` — the old ``gradient_ascent(f, x, ...)``, run by this package's one loop;
* :mod:`mei.legacy.exceptions` — ``FeatureVisException``;
* :mod:`mei.legacy.models` — ``Ensemble`` (the pretrained VGG-19 models need torchvision and are not provided).
"""
