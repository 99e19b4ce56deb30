"""Building blocks of the DataJoint tables in :mod:`mei.fabrik` and :mod:`mei.main` (no connection at import)."""
