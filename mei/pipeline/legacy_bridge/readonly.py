"""A connection to a legacy MySQL/MariaDB schema that cannot write.

Two locks, each enough on its own for data:

1. every statement passes :func:`check_read_only` first: one ``SELECT`` or ``SHOW`` statement, no ``;``, no
   comments, no ``INTO OUTFILE``/``DUMPFILE``, no locking reads; anything else raises
   :class:`LegacyWriteRefused` before it reaches the server;
2. the session is made read-only on the server (``SET SESSION TRANSACTION READ ONLY``), so an ``INSERT``,
   ``UPDATE`` or ``DELETE`` that got past (1) fails on the server with error 1792.

DDL (``CREATE``/``DROP``/``ALTER``) is not covered by (2) on MySQL/MariaDB; (1) refuses it. For a third
lock, connect as a database user that has only ``SELECT`` on the legacy schemas (docs/legacy.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["LegacyWriteRefused", "check_read_only", "ReadOnlyConnection"]

_ALLOWED = re.compile(r"^\s*(SELECT|SHOW)\s", re.IGNORECASE)
_FORBIDDEN = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE|@)|\bFOR\s+UPDATE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b|\bFOR\s+SHARE\b",
                        re.IGNORECASE)


class LegacyWriteRefused(PermissionError):
    """A statement that is not a plain read was about to be sent to a legacy schema; nothing was sent."""


def check_read_only(sql: str) -> str:
    """``sql`` if it is one plain ``SELECT``/``SHOW`` statement, else :class:`LegacyWriteRefused`."""
    text = sql.strip()
    if text.endswith(";"):
        text = text[:-1]
    problems = []
    if not _ALLOWED.match(text + " "):
        problems.append("it is not a SELECT or SHOW statement")
    if ";" in text:
        problems.append("it holds more than one statement")
    if "/*" in text or "--" in text or "#" in text.replace("`#", "`"):
        problems.append("it holds a comment")
    if _FORBIDDEN.search(text):
        problems.append("it writes a file or variable, or locks rows")
    if problems:
        head = " ".join(text.split())[:80]
        raise LegacyWriteRefused(f"the legacy bridge only reads: refused {head!r} ({'; '.join(problems)}); nothing "
                                 "was sent to the server")
    return text


class ReadOnlyConnection:
    """A PyMySQL connection to a MySQL/MariaDB server that only reads (see the module docstring).

    Args:
        host (str): the server. Default: ``"127.0.0.1"``.
        port (int): Default: 3306.
        user (str): Default: ``"root"``.
        password (str): Default: ``""``.
        connect_timeout (float): seconds. Default: 10.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 3306, user: str = "root", password: str = "",
                 connect_timeout: float = 10.0) -> None:
        import pymysql

        self.host, self.port, self.user = host, int(port), user
        self._connection = pymysql.connect(host=host, port=int(port), user=user, password=password,
                                           charset="utf8mb4", autocommit=True, connect_timeout=connect_timeout,
                                           binary_prefix=False)
        with self._connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")

    def query(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read-only statement (:func:`check_read_only`) and return all its rows."""
        text = check_read_only(sql)
        with self._connection.cursor() as cursor:
            cursor.execute(text, tuple(args) if args is not None else None)
            return list(cursor.fetchall())

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()

    def __enter__(self) -> ReadOnlyConnection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
