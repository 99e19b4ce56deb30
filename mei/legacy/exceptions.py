"""sinzlab/mei's ``mei.legacy.exceptions``."""


class FeatureVisException(Exception):
    """Catch-all exception for errors of the legacy feature visualization."""
