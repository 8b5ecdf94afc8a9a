"""What a signal is: a named PromQL expression, recorded by a rule and read by boards and reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """A recorded PromQL expression and, where one alerts on it, the alert that holds its thresholds."""

    record: str
    expr: str
    alert: str = ""  # "" when no alert thresholds it

    def selected(self, selector: str) -> str:
        """The recorded series with label matchers (`target=~"$target"`), or all of it without."""
        return f"{self.record}{{{selector}}}" if selector else self.record
