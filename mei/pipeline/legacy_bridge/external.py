"""DataJoint 0.14 values: blobs (``dj0``/``mYm``), internal attachments and external ``attach@``/``blob@`` objects.

An external value in a 0.14 table is the 16-byte hash of the object. The schema's ``~external_<store>`` table
lists it (``hash``, ``size``, ``attachment_name``, ``filepath``, ``contents_hash``); the object lies at
``<location>/<schema>/<h[0:2]>/<h[2:4]>/<h>[.<attachment_name>]`` (``h``: the hash as 32 hex digits, the
folds as the store's ``subfolding``, default ``(2, 2)``), or at ``<location>/<filepath>`` when the row has a
``filepath`` (blobs migrated from DataJoint 0.11). A store is described as in DataJoint 0.14's ``stores``
config: ``{"protocol": "file", "location": ...}`` or ``{"protocol": "s3", "endpoint": "host:port", "bucket":
..., "location": ..., "access_key": ..., "secret_key": ..., "secure": False}``. Stores are only ever read.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["LegacyDecodeError", "decode_blob", "Attachment", "object_path", "LegacyStore"]


class LegacyDecodeError(ValueError):
    """A legacy value could not be decoded (not a DataJoint blob, a missing external object …)."""


def decode_blob(data: bytes | None) -> Any:
    """A DataJoint blob (``dj0``/``mYm``, optionally ``ZL123`` compressed) as Python/numpy objects.

    Uses DataJoint's own blob codec (the same format in 0.14 and 2.x); ``None`` stays ``None``.
    """
    if data is None:
        return None
    from datajoint.blob import unpack

    raw = bytes(data)
    if not raw.startswith((b"dj0\0", b"mYm\0", b"ZL123\0")):
        raise LegacyDecodeError(f"not a DataJoint blob (starts {raw[:6]!r})")
    try:
        return unpack(raw)
    except Exception as error:  # any failure of the codec means the same to the caller
        raise LegacyDecodeError(f"undecodable DataJoint blob ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class Attachment:
    """A legacy ``attach`` value: the file's original ``name`` and its ``data``."""

    name: str
    data: bytes

    def save(self, directory: str | Path) -> Path:
        """Write the file into ``directory`` under its original name (what DataJoint 0.14's fetch does)."""
        path = Path(directory) / self.name
        path.write_bytes(self.data)
        return path


def _subfold(name: str, folds: tuple[int, ...]) -> list[str]:
    parts, rest = [], name
    for fold in folds:
        parts.append(rest[:fold].lower())
        rest = rest[fold:]
    return parts


def object_path(schema: str, spec: Mapping[str, Any], hash_: bytes, attachment_name: str | None = None,
                filepath: str | None = None) -> str:
    """Where DataJoint 0.14 put an external object: a file path, or the S3 object key in the store's bucket."""
    location = str(spec.get("location", ""))
    if filepath:
        relative = PurePosixPath(filepath)
    else:
        hexdigest = uuid.UUID(bytes=bytes(hash_)).hex
        folds = tuple(spec.get("subfolding", (2, 2)) or ())
        name = hexdigest + (f".{attachment_name}" if attachment_name else "")
        relative = PurePosixPath(schema, *_subfold(hexdigest, folds), name)
    if spec.get("protocol") == "s3":
        parts = PurePosixPath(location.replace("\\", "/")).parts
        if parts and (":" in parts[0]):  # a Windows drive, as DataJoint 0.14 strips it
            parts = parts[1:]
        return str(PurePosixPath(*parts, relative)) if parts else str(relative)
    return str(PurePosixPath(location, relative))


class LegacyStore:
    """Reads the objects of one legacy store (file or S3); never writes.

    Args:
        name (str): the store's name (the ``<store>`` of ``attach@<store>``).
        spec (Mapping): its DataJoint 0.14 spec (module docstring).
    """

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        protocol = spec.get("protocol")
        if protocol not in ("file", "s3"):
            raise ValueError(f"legacy store {name!r}: protocol must be 'file' or 's3', got {protocol!r}")
        self.name, self.spec = name, dict(spec)
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import botocore.session
            from botocore.config import Config as BotoConfig

            endpoint = str(self.spec["endpoint"])
            if not endpoint.startswith(("http://", "https://")):
                endpoint = f"{'https' if self.spec.get('secure', False) else 'http'}://{endpoint}"
            self._client = botocore.session.get_session().create_client(
                "s3", endpoint_url=endpoint, region_name=self.spec.get("region") or "us-east-1",
                aws_access_key_id=self.spec.get("access_key") or None,
                aws_secret_access_key=self.spec.get("secret_key") or None,
                config=BotoConfig(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3}))
        return self._client

    def read(self, path: str) -> bytes:
        """The bytes of the object at ``path`` (from :func:`object_path`)."""
        try:
            if self.spec["protocol"] == "file":
                return Path(path).read_bytes()
            response = self._s3().get_object(Bucket=self.spec["bucket"], Key=path)
            return bytes(response["Body"].read())
        except Exception as error:  # reported with the store and the path
            raise LegacyDecodeError(f"external object {path!r} of store {self.name!r} cannot be read "
                                    f"({type(error).__name__}: {error})") from error

    def close(self) -> None:
        """Close the S3 client, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None
