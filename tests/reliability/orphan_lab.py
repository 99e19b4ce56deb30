"""A lab table whose ``make`` fails after its files were uploaded, for the orphan tests.

``FailingMEI`` is the reliability lab's MEI table (:mod:`tests.reliability.lab`) whose ``insert1`` raises
for the units in ``FailingMEI.failing_units`` after the row, with its ``<npy@>`` and ``<object@>`` files,
went in: DataJoint rolls the row back, the files stay in the store.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mei import main


class UploadedThenFailed(RuntimeError):
    """Raised by ``FailingMEI.insert1`` after the upload."""


def declare_failing(lab: Any) -> type:
    """Declare ``FailingMEI`` in the lab's schema, on the lab's ``Net`` and ``Unit``; returns the class."""

    @lab.schema
    class FailingMEI(main.MEITemplate):
        trained_model_table = lab.Net
        objective_table = lab.Unit
        failing_units: ClassVar[set[int]] = set()

        def insert1(self, row: Any, **kwargs: Any) -> None:
            super().insert1(row, **kwargs)
            if int(row["unit"]) in self.failing_units:
                raise UploadedThenFailed(f"unit {row['unit']} fails after its files were uploaded")

    return FailingMEI
