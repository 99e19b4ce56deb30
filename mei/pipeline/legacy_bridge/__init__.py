"""The legacy bridge: DataJoint 0.14 / nnfabrik schemas read in place, guarded, and imported (docs/legacy.md).

* :mod:`.reader` — :class:`LegacySchema` / :class:`LegacyFabrik`: list and decode rows, ``load_model(key)``;
* :mod:`.readonly` — the connection that cannot write; :mod:`.external` — blobs and external objects;
* :mod:`.guard` — the check that refuses to declare DataJoint 2 tables in a DataJoint 0.14 schema;
* :mod:`.importer` — copies a fabrik schema into the package's DataJoint 2 tables (``mei legacy import``);
* :mod:`.meis` — copies sinzlab/mei methods, seeds and MEIs (``mei legacy import --meis``).

This package has nothing to do with ``mei.legacy`` (sinzlab/mei's own compatibility path).
"""

from .external import Attachment as Attachment
from .external import LegacyDecodeError as LegacyDecodeError
from .guard import LegacySchemaError as LegacySchemaError
from .guard import refuse_legacy_schema as refuse_legacy_schema
from .reader import LegacyFabrik as LegacyFabrik
from .reader import LegacySchema as LegacySchema
from .readonly import LegacyWriteRefused as LegacyWriteRefused
from .readonly import ReadOnlyConnection as ReadOnlyConnection
