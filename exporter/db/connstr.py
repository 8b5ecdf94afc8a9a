"""ODBC connection strings: built from a target's config, with the per-driver settings that make a
session bounded (timeouts) and read-only where only the connection string can do it (SQLite)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from exporter.db.dialect import Dialect, dialect_from_driver_name

# Only what would break parsing: some drivers (sqliteodbc) keep the braces as part of the value.
_NEEDS_BRACES = re.compile(r"[;{}]|^\s|\s$|^$")


def quote_value(value: str) -> str:
    """Quote an ODBC attribute value: braces around values with separators, '}' doubled inside."""
    if _NEEDS_BRACES.search(value):
        return "{" + value.replace("}", "}}") + "}"
    return value


@dataclass(frozen=True)
class ConnectionSpec:
    """Everything needed to open one target's connections. `password` never leaves this object in text
    meant for people: use `describe()` for logs and pages."""

    driver: str | None
    dsn: str | None
    attributes: Mapping[str, str]
    username: str | None
    password: str | None
    connect_timeout: float
    read_timeout: float  # a backstop for drivers that can hang on a frozen server (MariaDB READ_TIMEOUT)

    @property
    def driver_dialect(self) -> Dialect:
        return dialect_from_driver_name(self.driver or "")

    def connection_string(self, login_timeout: float | None = None) -> str:
        """The full ODBC connection string, including the password: for pyodbc.connect only."""
        return _join(self._pairs(include_password=True, login_timeout=login_timeout))

    def describe(self) -> str:
        """The connection string with the password masked, fit for logs and the status page."""
        return _join(self._pairs(include_password=False))

    def _pairs(self, include_password: bool, login_timeout: float | None = None) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.dsn is not None:
            pairs.append(("DSN", self.dsn))
        if self.driver is not None:
            pairs.append(("DRIVER", self.driver))
        dialect = self.driver_dialect
        attributes = dict(self.attributes)
        if dialect is Dialect.SQLITE:
            attributes = _sqlite_attributes(attributes)
        pairs.extend(attributes.items())
        if self.username is not None:
            pairs.append(("UID", self.username))
        if self.password is not None:
            pairs.append(("PWD", self.password if include_password else "<secret>"))
        existing = {key.upper() for key, _ in pairs}
        timeouts = _timeout_attributes(dialect, login_timeout or self.connect_timeout, self.read_timeout)
        pairs.extend((k, v) for k, v in timeouts if k.upper() not in existing)
        return pairs


def _join(pairs: Iterable[tuple[str, str]]) -> str:
    return ";".join(f"{key}={quote_value(value)}" for key, value in pairs)


def _sqlite_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """Open SQLite read-only by URI (the driver has no read-only keyword) and never create a file.

    BigInt=1 because without it the driver truncates 64-bit integers to 32 bits.
    """
    result: dict[str, str] = {}
    for key, value in attributes.items():
        if key.lower() == "database" and not value.startswith("file:"):
            result[key] = f"file:{quote(str(Path(value)))}?mode=ro"
        else:
            result[key] = value
    lowered = {key.lower() for key in result}
    for key, value in (("NoCreat", "1"), ("BigInt", "1"), ("Timeout", "2000")):
        if key.lower() not in lowered:
            result[key] = value
    return result


def _timeout_attributes(dialect: Dialect, login_timeout: float, read_timeout: float) -> list[tuple[str, str]]:
    if dialect is Dialect.MYSQL:
        # MariaDB Connector/ODBC 3.1 ignores the ODBC login timeout; CONN_TIMEOUT is what it honours.
        # READ_TIMEOUT bounds a read from a frozen server, which neither cancel nor max_statement_time can.
        return [
            ("CONN_TIMEOUT", str(max(1, round(login_timeout)))),
            ("READ_TIMEOUT", str(max(1, round(read_timeout)))),
            ("WRITE_TIMEOUT", str(max(1, round(read_timeout)))),
        ]
    return []
