"""How often a check runs and how long it may take: one rule for every kind of check, built-in or from a
pack or audit."""

from __future__ import annotations

from dataclasses import dataclass


def check_timeout(own: float | None, default: float, interval: float) -> float:
    """A check's timeout: its own when set, else the default, never longer than its interval.

    A run that outlasted its interval would overlap the next one; the config refuses an own timeout
    longer than the interval, so only a default is ever shortened here.
    """
    return min(own if own is not None else default, interval)


@dataclass(frozen=True)
class Schedule:
    """When a check runs (every `interval` seconds) and when a run is cancelled (after `timeout`)."""

    interval: float
    timeout: float


def check_schedule(
    interval: float | None, timeout: float | None, *, default_interval: float, default_timeout: float
) -> Schedule:
    """A check's schedule from its own settings, where set, and its defaults (its kind's, else global)."""
    every = interval if interval is not None else default_interval
    return Schedule(every, check_timeout(timeout, default_timeout, every))
