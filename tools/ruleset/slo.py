"""SLOs of business transactions: error ratios, burn rates and the budget left (recorded), and the
multi-window, multi-burn-rate alert (exporter/signals/slo.py says what each is)."""

from __future__ import annotations

from typing import Any

from exporter.checks.transactions_metrics import DEFAULT_BUCKETS
from exporter.signals import slo
from ruleset.builder import Group, RuleBuilder, duration_seconds, num

ALERT = "ErpTransactionErrorBudgetBurn"


def objectives(b: RuleBuilder) -> list[slo.Objectives]:
    """The objectives of thresholds.yml `slos`."""
    return slo.objectives(b.slos, tuple(float(bound) for bound in DEFAULT_BUCKETS))


def _record(record: str, expr: str, objective: str) -> dict[str, Any]:
    return {"record": record, "expr": expr, "labels": {"slo": objective}}


def _windows(b: RuleBuilder) -> tuple[str, ...]:
    return (*slo.WINDOWS, str(b.slos["period"]))


def recording_rules(b: RuleBuilder) -> list[dict[str, Any]]:
    """Error ratios per window (availability once for every transaction, latency per threshold), burn
    rates per objective group, and the budget left over the period."""
    groups = objectives(b)
    rules = [_record(slo.error_ratio_record(window), slo.availability_error_ratio(window), slo.AVAILABILITY)
             for window in _windows(b)]
    for group in groups:
        rules += [
            _record(slo.error_ratio_record(window),
                    slo.latency_error_ratio(window, group.latency_threshold, group.selector), slo.LATENCY)
            for window in _windows(b)
        ]
    period = str(b.slos["period"])
    for objective in (slo.AVAILABILITY, slo.LATENCY):
        # One rule per record and objective, the objective groups joined by `or`: every transaction is in
        # exactly one group, and promtool refuses two rules recording the same series.
        def per_group(template: str, objective: str = objective) -> str:
            return "\nor\n".join(
                template.format(ratio=f'{{slo="{objective}",{group.selector}}}',
                                budget=num(round(group.budget(objective), 6)))
                for group in groups
            ) + "\n"

        for window in slo.WINDOWS:
            rules.append(_record(slo.burn_rate_record(window),
                                 per_group(slo.error_ratio_record(window) + "{ratio} / {budget}"), objective))
        rules.append(_record(slo.BUDGET_REMAINING,
                             per_group("1 - " + slo.error_ratio_record(period) + "{ratio} / {budget}"), objective))
    return rules


def _condition(pairs: tuple[slo.BurnWindow, ...]) -> str:
    parts = [
        f"(\n    {slo.burn_rate_record(pair.long)} > {num(pair.factor)}\n  and\n"
        f"    {slo.burn_rate_record(pair.short)} > {num(pair.factor)}\n)"
        for pair in pairs
    ]
    return "\nor\n".join(parts) + "\n"


def _lasts(period_s: float, factor: float) -> str:
    hours = period_s / factor / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def alert_rules(b: RuleBuilder) -> list[dict[str, Any]]:
    """A page for a fast burn, a ticket for a slow one."""
    period = str(b.slos["period"])
    period_s = duration_seconds(period)
    rules: list[dict[str, Any]] = []
    for severity, pairs, kind in (("critical", slo.PAGE_WINDOWS, "fast"), ("warning", slo.TICKET_WINDOWS, "slow")):
        windows = " or ".join(f"{pair.long} and {pair.short} both over {num(pair.factor)}x" for pair in pairs)
        fastest = pairs[0]
        rules += b.single(
            ALERT, severity, "transaction", "2", _condition(pairs),
            f"Transaction {{{{ $labels.transaction }}}} burns its {{{{ $labels.slo }}}} error budget ({kind})",
            f"Transaction {{{{ $labels.transaction }}}} on {{{{ $labels.target }}}} spends its {period} "
            f"{{{{ $labels.slo }}}} error budget {{{{ $value | humanize }}}} times as fast as the objective "
            f"allows ({windows}); at {num(fastest.factor)} times a {period} budget lasts "
            f"{_lasts(period_s, fastest.factor)}.",
        )
    return rules


def groups(b: RuleBuilder) -> list[Group]:
    return [Group("erp-slo-recording", recording_rules(b)), Group("erp-slo", alert_rules(b))]
