"""Prometheus-style durations ('15s', '2m', '1h30m', '500ms') as float seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS: tuple[tuple[str, float], ...] = (
    ("y", 365 * 86400.0),
    ("w", 7 * 86400.0),
    ("d", 86400.0),
    ("h", 3600.0),
    ("m", 60.0),
    ("s", 1.0),
    ("ms", 0.001),
)
DURATION_PATTERN = r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?((\d+)ms)?$"
_DURATION_RE = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> float:
    """Parse a Prometheus duration into seconds; raise ValueError with a message fit for a config error."""
    match = _DURATION_RE.match(text) if text else None
    if match is None or not any(match.groups()):
        raise ValueError(f"expected a duration like 30s, got {text!r}")
    numbers = match.groups()[1::2]  # the (\d+) groups, one per unit, in _UNITS order
    return sum(int(n) * factor for n, (_, factor) in zip(numbers, _UNITS, strict=True) if n)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration string for a number of seconds (used in messages and dumps)."""
    if seconds <= 0:
        return "0s"
    remaining_ms = round(seconds * 1000)
    parts: list[str] = []
    for unit, factor in _UNITS:
        unit_ms = round(factor * 1000)
        count, remaining_ms = divmod(remaining_ms, unit_ms)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _validate(value: Any) -> float:
    if isinstance(value, str):
        return parse_duration(value.strip())
    raise ValueError(f"expected a duration like 30s, got {value!r}")


def _validate_positive(value: Any) -> float:
    seconds = _validate(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration longer than 0s, got {value!r}")
    return seconds


_JSON_SCHEMA = WithJsonSchema(
    {"type": "string", "pattern": DURATION_PATTERN, "examples": ["15s", "2m", "1h30m"]}
)
_SERIALIZER = PlainSerializer(format_duration, return_type=str)

Duration = Annotated[float, BeforeValidator(_validate), _SERIALIZER, _JSON_SCHEMA]
"""A config field holding a duration: written '30s' in YAML, a float of seconds in Python."""

PositiveDuration = Annotated[float, BeforeValidator(_validate_positive), _SERIALIZER, _JSON_SCHEMA]
"""A duration that must not be zero: intervals (0s would run a check in a busy loop) and timeouts."""
