"""A repair of DataJoint 2 (2.3) that the package's tables and sinzlab/mei's mixins need on MariaDB.

DataJoint keeps the metadata of a store column (``<attach@store>``, ``<blob@store>``, ``<filepath@store>``,
``<npy@store>``, ...) in a ``json`` column and JSON-encodes a value on insert only when the table heading marks
the column as json. It sets that mark from the type the server reports; MariaDB reports ``json`` columns as
``longtext``, so the mark is missing and the codec's metadata dict reaches the driver unencoded (PyMySQL:
``TypeError: dict can not be used as parameter``). :func:`install` makes every heading DataJoint reads from a
database mark a codec column whose storage type is ``json`` as json. MySQL and PostgreSQL already report
``json``, so nothing changes there. Fetching needs no repair: DataJoint decodes by the codec's storage type.
"""

from __future__ import annotations

from typing import Any

_MARK = "_mei_repairs_json_flags"


def storage_is_json(attr: Any) -> bool:
    """Whether the codec column ``attr`` (a DataJoint heading ``Attribute``) is stored as ``json``."""
    from datajoint.codecs import resolve_dtype
    from datajoint.errors import DataJointError

    codec = attr.codec
    name = getattr(codec, "name", None)
    if not name:  # no codec, or one DataJoint could not find (its error comes on first use)
        return False
    spec = f"<{name}@{attr.store}>" if attr.store is not None else f"<{name}>"
    try:
        final_dtype = resolve_dtype(spec)[0]
    except DataJointError:
        return False
    return str(final_dtype).lower() == "json"


def repair_heading(heading: Any) -> int:
    """Mark the json-stored codec columns of a loaded ``heading`` as json; returns how many were repaired."""
    attributes = getattr(heading, "_attributes", None)
    if not attributes:
        return 0
    repaired = {name: attr._replace(json=True) for name, attr in attributes.items()
                if attr.codec is not None and not attr.json and storage_is_json(attr)}
    attributes.update(repaired)
    return len(repaired)


def install() -> None:
    """Repair every heading DataJoint loads from a database from now on (idempotent; see the module)."""
    from datajoint.heading import Heading

    original = Heading._init_from_database
    if getattr(original, _MARK, False):
        return

    def init_from_database(self: Any) -> None:
        original(self)
        repair_heading(self)

    setattr(init_from_database, _MARK, True)
    init_from_database.__doc__ = original.__doc__
    Heading._init_from_database = init_from_database
