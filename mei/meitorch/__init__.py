"""meitorch's API on the package's engine: ``from mei.meitorch.mei import MEI``.

``MEI(operation, shape, device).generate_pixel_mei(config)`` / ``generate_variational_mei`` /
``generate_transformation_mei``; schedules in :mod:`mei.meitorch.tools.schedules`, the generative network in
:mod:`mei.meitorch.tools.transformations`, analysis in :mod:`mei.meitorch.analyze`, pipeline methods in
:mod:`mei.meitorch.methods`. See ``docs/meitorch.md``.
"""

from .mei import MEI
from .result import MEIResult

__all__ = ["MEI", "MEIResult"]
