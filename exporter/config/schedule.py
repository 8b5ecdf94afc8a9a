"""How long a check may run: one rule for every kind of check, built-in or from a pack or audit."""

from __future__ import annotations


def check_timeout(own: float | None, default: float, interval: float) -> float:
    """A check's timeout: its own when set, else the default, never longer than its interval.

    A run that outlasted its interval would overlap the next one; the config refuses an own timeout
    longer than the interval, so only a default is ever shortened here.
    """
    return min(own if own is not None else default, interval)
