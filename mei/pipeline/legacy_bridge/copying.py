"""Row by row copying from a legacy schema into DataJoint 2 tables, shared by :mod:`.importer` and :mod:`.meis`:
a row already in the target is counted as present, a row that cannot be decoded or written (or whose parent row
was skipped) is reported by key and skipped, and each row is written by its own transaction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .external import LegacyDecodeError
from .reader import LegacySchema

__all__ = ["ImportSummary", "RowCopier"]


@dataclass
class ImportSummary:
    """What an import did: rows copied and already present per table, bytes of weights copied, rows skipped."""

    copied: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    bytes_copied: int = 0

    def merged(self, other: ImportSummary) -> ImportSummary:
        """This summary followed by ``other`` (of another import)."""
        return ImportSummary({**self.copied, **other.copied}, {**self.present, **other.present},
                             [*self.skipped, *other.skipped], self.bytes_copied + other.bytes_copied)

    def text(self) -> str:
        """A few lines for people: one per table, the bytes, then one per skipped row."""
        lines = [f"{table}: {self.copied.get(table, 0)} copied, {self.present.get(table, 0)} already there"
                 for table in dict.fromkeys([*self.copied, *self.present])]
        lines.append(f"stored objects copied: {self.bytes_copied} bytes")
        lines.append(f"skipped: {len(self.skipped)} rows")
        lines += [f"  {table} {key}: {reason}" for table, key, reason in self.skipped]
        return "\n".join(lines)


class RowCopier:
    """Copies the rows of legacy tables one transaction at a time (see :meth:`copy`), filling a summary."""

    def __init__(self, legacy: LegacySchema, summary: ImportSummary, bar: Any,
                 on_row: Callable[[str, dict[str, Any]], None] | None) -> None:
        self.legacy, self.summary, self.bar, self.on_row = legacy, summary, bar, on_row
        self.failed: dict[str, list[dict[str, Any]]] = {}

    def _skip(self, table: str, key: dict[str, Any], reason: str) -> None:
        self.summary.skipped.append((table, key, reason))
        self.failed.setdefault(table, []).append(key)

    def _parent_skipped(self, key: Mapping[str, Any]) -> str | None:
        for table, keys in self.failed.items():
            for failed in keys:
                if failed and all(key.get(name) == value for name, value in failed.items()):
                    return f"its {table} row {failed} was skipped"
        return None

    def copy(self, table: str, target: Any, write: Callable[[Any, dict[str, Any], dict[str, Any]], int]) -> None:
        """Copy every row of the legacy ``table`` whose key is not in ``target`` with ``write(target, key, row)``
        (which writes one row in one transaction and returns the bytes it stored); count, report, skip."""
        self.summary.copied.setdefault(table, 0)
        self.summary.present.setdefault(table, 0)
        key_names = self.legacy.primary_key(table)
        for raw in self.legacy.fetch_raw(table):
            self.bar.update(1)
            key = {name: raw[name] for name in key_names}
            if target & key:  # checked before decoding: a rerun reads no external object of a row it has
                self.summary.present[table] += 1
                continue
            try:
                row = self.legacy.decode_row(table, raw)
            except LegacyDecodeError as error:
                self._skip(table, key, str(error))
                continue
            reason = self._parent_skipped(key)
            if reason is None:
                try:
                    self.summary.bytes_copied += write(target, key, row)
                except Exception as error:  # noqa: BLE001 - the row is reported and skipped, the import goes on
                    reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if reason is not None:
                self._skip(table, key, reason)
                continue
            self.summary.copied[table] += 1
            if self.on_row is not None:
                self.on_row(table, key)
