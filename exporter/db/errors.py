"""Classify driver errors by SQLSTATE and message, never by exception class.

The Debian drivers raise inconsistent pyodbc classes for the same condition (a wrong MariaDB password is
an InterfaceError, a refused connection a plain Error, a timeout a plain Error with HY018), so the
SQLSTATE and a few well-known message fragments are what we go by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.run import CheckError, ErrorReason

_AUTH_FRAGMENTS = (
    "password authentication failed",
    "access denied for user",
    "authentication failed",
    "no pg_hba.conf entry",
    "login failed",
    "invalid authorization",
)
_TIMEOUT_FRAGMENTS = (
    "timeout expired",
    "statement timeout",
    "max_statement_time exceeded",
    "query execution was interrupted",
    "canceling statement",
    "interrupted",
)
_CONNECTION_FRAGMENTS = (
    "can't connect",
    "could not connect",
    "connection refused",
    "lost connection",
    "server closed the connection",
    "connection not open",
    "no connection to the server",
    "terminating connection",
    "connection to server",
    "server has gone away",
    "connect failed",
    "communication link failure",
    "could not send data",
    "could not receive data",
    "the database system is",  # starting up / shutting down / in recovery mode
)
_LOGIN_TIMEOUT_FRAGMENTS = ("timeout expired", "timed out", "system error: 110")  # 110 = ETIMEDOUT
_DRIVER_PREFIX = re.compile(r"^\[[0-9A-Z]{5}\]\s*")


@dataclass(frozen=True)
class ClassifiedError:
    reason: ErrorReason
    message: str
    connection_broken: bool

    def as_check_error(self) -> CheckError:
        return CheckError(self.reason, self.message)


def sqlstate_of(exc: BaseException) -> str:
    """The SQLSTATE pyodbc puts first in args, or '' when there is none."""
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], str) and len(args[0]) == 5:
        return args[0]
    return ""


def error_message(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A one-line message from a driver error, secrets masked, driver noise trimmed."""
    args: tuple[object, ...] = tuple(getattr(exc, "args", ()))
    text = str(args[1]) if len(args) > 1 else str(exc)
    text = _DRIVER_PREFIX.sub("", text)
    text = " ".join(text.replace("\\n", " ").split())
    return mask(text, secrets)[:300]


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value in text by <secret>."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text


def classify(exc: BaseException, during_connect: bool, secrets: Iterable[str] = ()) -> ClassifiedError:
    """Decide the reason label and whether the connection must be thrown away."""
    state = sqlstate_of(exc)
    message = error_message(exc, secrets)
    lowered = message.lower()
    if state.startswith("28") or any(f in lowered for f in _AUTH_FRAGMENTS):
        return ClassifiedError(ErrorReason.AUTH, message, connection_broken=True)
    if state in {"HYT00", "HYT01"} or (
        during_connect and any(f in lowered for f in _LOGIN_TIMEOUT_FRAGMENTS)
    ):
        # A server that accepts but never answers: distinct from a refused connection.
        return ClassifiedError(ErrorReason.TIMEOUT, message, connection_broken=True)
    if (
        state.startswith("08")
        or state in {"57P01", "57P02", "57P03"}
        or any(f in lowered for f in _CONNECTION_FRAGMENTS)
    ):
        return ClassifiedError(ErrorReason.CONNECT, message, connection_broken=True)
    if during_connect:
        return ClassifiedError(ErrorReason.CONNECT, message, connection_broken=True)
    if state in {"57014", "HY018", "70100", "HY008"} or any(f in lowered for f in _TIMEOUT_FRAGMENTS):
        # A cancelled or timed-out statement leaves drivers in states we do not want to reuse.
        return ClassifiedError(ErrorReason.TIMEOUT, message, connection_broken=True)
    return ClassifiedError(ErrorReason.QUERY, message, connection_broken=False)
