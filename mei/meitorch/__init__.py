"""meitorch's API on the package's engine: ``from mei.meitorch.mei import MEI``.

``MEI(operation, shape, device).generate_pixel_mei(config)`` / ``generate_variational_mei`` /
``generate_transformation_mei``; schedules in :mod:`mei.meitorch.tools.schedules`, the generative network in
:mod:`mei.meitorch.tools.transformations`, analysis in :mod:`mei.meitorch.analyze`, pipeline methods in
:mod:`mei.meitorch.methods`. See ``docs/meitorch.md``.
"""

from .linearmei import LinearMEI
from .mei import MEI
from .result import MEI_image, MEI_transformation, MEI_variational, MEIResult

__all__ = ["MEI", "LinearMEI", "MEIResult", "MEI_image", "MEI_variational", "MEI_transformation"]
