"""Logging in the Prometheus exporters' style: logfmt by default, JSON on request, one line per event,
secrets masked in the final line whatever produced them."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else came in through `extra=` and is printed as a field.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class SecretMask:
    """The set of secret values to hide; replaced on every config (re)load."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()

    def update(self, secrets: list[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        with self._lock:
            self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def apply(self, text: str) -> str:
        with self._lock:
            secrets = self._secrets
        for secret in secrets:
            text = text.replace(secret, "<secret>")
        return text


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "level": record.levelname.lower().replace("warning", "warn"),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
            fields[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        fields["exc"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
    return fields


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    return text


class LogfmtFormatter(logging.Formatter):
    def __init__(self, mask: SecretMask) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record).items())
        return self._mask.apply(line)


class JsonFormatter(logging.Formatter):
    def __init__(self, mask: SecretMask) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self._mask.apply(json.dumps(_fields(record), default=str))


def configure_logging(level: str, fmt: str, mask: SecretMask, stream: TextIO | None = None) -> None:
    """Route every logger to one handler on stderr with the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(mask) if fmt == "json" else LogfmtFormatter(mask))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
