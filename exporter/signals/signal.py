"""What a signal is: a named PromQL expression, recorded by a rule and read by boards and reports."""

from __future__ import annotations

from dataclasses import dataclass

#: The labels a fleet adds to every series of a landscape (docs/scaling.md, "A fleet of landscapes"): `site`, the
#: external label of the site's agent pair, and `landscape`, the scrape's target label. Every aggregation and
#: join keeps them, so a rule never mixes two landscapes; on a single Prometheus they are absent and change nothing.
FLEET_LABELS = "site, landscape"


@dataclass(frozen=True)
class Signal:
    """A recorded PromQL expression and, where one alerts on it, the alert that holds its thresholds."""

    record: str
    expr: str
    alert: str = ""  # "" when no alert thresholds it

    def selected(self, selector: str) -> str:
        """The recorded series with label matchers (`target=~"$target"`), or all of it without."""
        return f"{self.record}{{{selector}}}" if selector else self.record
