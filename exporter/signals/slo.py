"""Service-level objectives of business transactions: error ratios, burn rates and the budget left.

Two objectives per transaction, over a period (30 days by default; alert_rules/thresholds.yml `slos`):

* availability: the share of runs that succeed (runs = successful runs observed in the duration histogram
  plus failures of every reason);
* latency: the share of successful runs that finish within a threshold, which must be a bucket bound of
  the histogram so that it can be read exactly (le="5.0").

Each is recorded as an error ratio per window (`erp:slo_errors:ratio_rate<window>{slo}`), as a burn rate
(the error ratio over the error budget, 1 - objective: 1 means the budget lasts exactly the period) and as
the budget left over the period. The burn-rate alerts follow the SRE workbook's multi-window,
multi-burn-rate recipe: a page when 1 h and 5 m both burn 14.4 times too fast or 6 h and 30 m 6 times, a
ticket when 1 d and 2 h burn 3 times or 3 d and 6 h once.
"""

from __future__ import annotations

from dataclasses import dataclass

AVAILABILITY = "availability"
LATENCY = "latency"

#: the windows the burn-rate alerts read, shortest first
WINDOWS: tuple[str, ...] = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

WHOLE = 'step=""'  # the whole transaction, not one of its steps

BUDGET_REMAINING = "erp:slo_error_budget:remaining_ratio"


def error_ratio_record(window: str) -> str:
    """The recorded error ratio over `window` (both objectives, told apart by the `slo` label)."""
    return f"erp:slo_errors:ratio_rate{window}"


def burn_rate_record(window: str) -> str:
    """The recorded burn rate over `window`: error ratio / error budget."""
    return f"erp:slo_error_budget:burn_rate{window}"


@dataclass(frozen=True)
class BurnWindow:
    """One condition of a burn-rate alert: both windows burn faster than `factor`."""

    long: str
    short: str
    factor: float


#: the SRE workbook's pairs (chapter "Alerting on SLOs", table 5-8) for a 30-day period
PAGE_WINDOWS = (BurnWindow("1h", "5m", 14.4), BurnWindow("6h", "30m", 6.0))
TICKET_WINDOWS = (BurnWindow("1d", "2h", 3.0), BurnWindow("3d", "6h", 1.0))


def _matchers(*parts: str) -> str:
    return ",".join(part for part in parts if part)


def le_value(threshold: float) -> str:
    """The `le` label value of a bucket bound as the exporter writes it (5 -> "5.0")."""
    return repr(float(threshold))


def availability_error_ratio(window: str, selector: str = "") -> str:
    """Failed runs over all runs in `window`; 0 when there were runs and no failure series."""
    count = f"rate(erp_transaction_duration_seconds_count{{{_matchers(WHOLE, selector)}}}[{window}])"
    matchers = f"{{{selector}}}" if selector else ""
    failures = f"sum without (reason) (rate(erp_transaction_failures_total{matchers}[{window}]))"
    return (
        f"(\n  {failures}\n  or 0 * {count}\n)\n/\n"
        f"(\n    {count} + {failures}\n  or\n    {count}\n  or\n    {failures}\n)\n"
    )


def latency_error_ratio(window: str, threshold: float, selector: str = "") -> str:
    """The share of successful runs in `window` slower than `threshold` seconds (a bucket bound)."""
    bucket_matchers = _matchers(WHOLE, f'le="{le_value(threshold)}"', selector)
    within = f"sum without (le) (rate(erp_transaction_duration_seconds_bucket{{{bucket_matchers}}}[{window}]))"
    count = f"rate(erp_transaction_duration_seconds_count{{{_matchers(WHOLE, selector)}}}[{window}])"
    return f"1 - (\n  {within}\n  /\n  {count}\n)\n"


@dataclass(frozen=True)
class Objectives:
    """The objectives of the transactions a selector picks (the defaults, or one transaction's own)."""

    selector: str  # label matchers without braces
    availability: float  # share of runs that succeed, e.g. 0.99
    latency: float  # share of successful runs within latency_threshold, e.g. 0.95
    latency_threshold: float  # seconds; a bucket bound of the duration histogram

    def budget(self, slo: str) -> float:
        """The error budget of one objective: the share of runs that may fail it."""
        return 1.0 - (self.availability if slo == AVAILABILITY else self.latency)


#: business transactions only by default: scheduled jobs from the ERP's job log have no objective
DEFAULT_SELECTOR = 'source!="job_log"'


def _ratio(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < float(value) < 1:
        raise ValueError(f"thresholds.yml: {key} must be a ratio between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def _objectives(raw: dict[str, object], base: Objectives | None, key: str, selector: str,
                buckets: tuple[float, ...]) -> Objectives:
    unknown = sorted(set(raw) - {"availability", "latency", "latency_threshold"})
    if unknown:
        raise ValueError(f"thresholds.yml: {key}.{unknown[0]} is not a key (availability, latency, latency_threshold)")
    availability = raw.get("availability", base.availability if base else None)
    latency = raw.get("latency", base.latency if base else None)
    threshold = raw.get("latency_threshold", base.latency_threshold if base else None)
    if not isinstance(threshold, int | float) or float(threshold) not in buckets:
        shown = ", ".join(f"{bound:g}" for bound in buckets)
        raise ValueError(
            f"thresholds.yml: {key}.latency_threshold must be a bucket bound of the duration histogram "
            f"({shown}), got {threshold!r}"
        )
    return Objectives(selector, _ratio(availability, f"{key}.availability"), _ratio(latency, f"{key}.latency"),
                      float(threshold))


def objectives(slos: dict[str, object], buckets: tuple[float, ...]) -> list[Objectives]:
    """The objectives of thresholds.yml `slos`: the defaults for every business transaction not listed,
    then each listed transaction's own (keys it leaves out come from the defaults)."""
    default_raw = slos.get("default")
    if not isinstance(default_raw, dict):
        raise ValueError("thresholds.yml: slos.default must map availability, latency and latency_threshold")
    listed = slos.get("transactions") or {}
    if not isinstance(listed, dict):
        raise ValueError("thresholds.yml: slos.transactions must map transaction names to their objectives")
    names = sorted(str(name) for name in listed)
    excluded = "|".join(re_escape(name) for name in names)
    default_selector = DEFAULT_SELECTOR + (f',transaction!~"{excluded}"' if excluded else "")
    default = _objectives(default_raw, None, "slos.default", default_selector, buckets)
    found = [default]
    for name in names:
        own = listed[name]
        if not isinstance(own, dict):
            raise ValueError(f"thresholds.yml: slos.transactions.{name} must map its objectives")
        found.append(_objectives(own, default, f"slos.transactions.{name}", f'transaction="{name}"', buckets))
    return found


def re_escape(name: str) -> str:
    """A transaction name as a literal in a PromQL regex (RE2)."""
    return "".join("\\\\" + char if not (char.isalnum() or char == "_") else char for char in name)
