"""Month-end close: the users and transaction latency of this close against the previous ones."""

from __future__ import annotations

import copy
import re
from typing import Any

from exporter.signals.month_end import POSTING_BACKLOG, POSTING_BACKLOG_GROWTH_1H, WINDOW_RECORD
from exporter.signals.signal import FLEET_LABELS
from exporter.signals.transactions import LATENCY_P95
from ruleset.builder import RuleBuilder, duration_seconds, human_seconds, num, promql


def month_end_rules(b: RuleBuilder) -> list[dict[str, Any]]:
    horizon = str(b.month_end["horizon"])
    common: dict[str, object] = {
        "window": str(b.month_end["trend_window"]),
        "horizon": horizon,
        "horizon_s": duration_seconds(horizon),
        "in_window": f"and on ({FLEET_LABELS}) ({WINDOW_RECORD} == 1)",
        "p95_record": LATENCY_P95.record,
        "in_close": f"and on ({FLEET_LABELS}) "
        f"(max by ({FLEET_LABELS}) (erp_calendar_month_end_close{b.calendar}) == 1)",
        "when": f"In or up to {int(b.month_end['days_before_close'])} business days before the month-end "
        "close",
    }
    rules = b.pair(
        "ErpMonthEndConnectionsTrend", "month_end", "2",
        promql("""
            predict_linear(erp_database_connections[@window@], @horizon_s@)
            > @threshold@ * erp_database_max_connections
            @in_window@
        """),
        "Month-end: connections on {{ $labels.target }} trend to the limit",
        "@when@: at the trend of the last @window@, {{ $labels.target }} will use "
        "{{ $value | humanize }} connections within @horizon@, over @shown@ of its max_connections.",
        fmt="ratio", texts=common,
    )
    name = "ErpMonthEndUsersTrend"
    users = b.a(name)
    user_overrides: dict[str, dict[str, float]] = (users.get("overrides") or {}).get("values") or {}
    users_expr = promql("""
        predict_linear(erp_users_logged_in@selector@[@window@], @horizon_s@) > @threshold@
        @in_window@
    """)
    users_summary = "Month-end: users on {{ $labels.target }} trend to the capacity"
    users_description = (
        "@when@: at the trend of the last @window@, {{ $value | humanize }} users will be logged in to "
        "{{ $labels.target }} within @horizon@, more than the @shown@ it is sized for."
    )
    excluded = "|".join(re.escape(key) for key in sorted(user_overrides))
    rules += b.pair(
        name, "month_end", "2", users_expr, users_summary, users_description,
        selector=f'{{target!~"{excluded}"}}' if excluded else "", texts=common,
    )
    for target, values in sorted(user_overrides.items()):
        sub = copy.deepcopy(b)
        sub.alerts = {**b.alerts, name: {**users, **values}}
        rules += sub.pair(
            name, "month_end", "2", users_expr, users_summary, users_description,
            selector=f'{{target="{target}"}}', texts=common,
        )
    # The warning objective of ErpTransactionLatencyHigh, per transaction where it has its own.
    latency = b.a("ErpTransactionLatencyHigh")
    objectives: dict[str, dict[str, float]] = (latency.get("overrides") or {}).get("values") or {}
    excluded = "|".join(re.escape(key) for key in sorted(objectives))
    selectors = [('{source!="job_log"' + (f',transaction!~"{excluded}"' if excluded else "") + "}",
                  float(latency["warning"]))]
    selectors += [(f'{{source!="job_log",transaction="{name}"}}', float(values.get("warning", latency["warning"])))
                  for name, values in sorted(objectives.items())]
    for selector, objective in selectors:
        rules += b.single(
            "ErpMonthEndLatencyTrend", "warning", "month_end", "2",
            promql("""
                predict_linear(@p95_record@@selector@[@window@], @horizon_s@)
                > @objective@
                @in_window@
            """),
            "Month-end: transaction {{ $labels.transaction }} trends over its objective",
            "@when@: at the trend of the last @window@, the 95th percentile of transaction "
            "{{ $labels.transaction }} on {{ $labels.target }} reaches {{ $value | humanizeDuration }} within "
            "@horizon@, over the @objective_shown@ objective.",
            selector=selector, objective=num(objective), objective_shown=human_seconds(objective), texts=common,
        )
    rules += b.pair(
        "ErpMonthEndLoadAbovePreviousClose", "month_end", "2",
        "max_over_time(erp_users_logged_in[1h])\n"
        + "> @threshold@ * (\n"
        + previous_close(b, "max_over_time(erp_users_logged_in[1h] offset @offset@)")
        + ")\nand max_over_time(erp_users_logged_in[1h]) >= @min_users@\n@in_close@",
        "Month-end: more users on {{ $labels.target }} than at the previous close",
        "During the month-end close, up to {{ $value | humanize }} users were logged in to "
        "{{ $labels.target }} in the last hour, @shown@ times as many as at the same point of the "
        "previous close or more.",
        min_users=int(b.a("ErpMonthEndLoadAbovePreviousClose")["min_users"]), texts=common,
    )
    # Now and then computed the same way, from the raw histogram (the recorded p95 has no history
    # until the rule has run for five weeks).
    p95 = (
        'histogram_quantile(0.95, rate(erp_transaction_duration_seconds_bucket{step="",source!="job_log"}'
        "[5m]@at@))"
    )
    rules += b.pair(
        "ErpMonthEndLatencyAbovePreviousClose", "month_end", "2",
        p95.replace("@at@", "")
        + "\n> @threshold@ * (\n"
        + previous_close(b, p95.replace("@at@", " offset @offset@"))
        + ")\nand\n" + p95.replace("@at@", "") + " >= @min_seconds@\n@in_close@",
        "Month-end: transaction {{ $labels.transaction }} slower than at the previous close",
        "During the month-end close, the 95th percentile of transaction {{ $labels.transaction }} on "
        "{{ $labels.target }} is {{ $value | humanizeDuration }}, @shown@ times the value at the same "
        "point of the previous close or more.",
        min_seconds=num(float(b.a("ErpMonthEndLatencyAbovePreviousClose")["min_seconds"])), texts=common,
    )
    rules += b.pair(
        "ErpMonthEndPostingBacklog", "month_end", "2",
        promql("""
            @backlog@ > @threshold@
            and @growth@ > 0
            @in_window@
        """),
        "Month-end: the posting backlog on {{ $labels.target }} keeps growing",
        "@when@: {{ $value | humanize }} documents wait to be posted on {{ $labels.target }} (account moves in "
        "draft, invoices in draft or validated), more than @shown@, and the backlog still grew over the last "
        "hour: the close will not finish in time at this pace.",
        backlog=POSTING_BACKLOG.record, growth=POSTING_BACKLOG_GROWTH_1H.record, texts=common,
    )
    return rules


def previous_close(b: RuleBuilder, expr_at: str) -> str:
    """The value at the same point of the previous close: 4 weeks back (the same weekday) when that
    point was inside a closing period, else 5 weeks back (a close that started a weekend later)."""
    parts = []
    for offset in b.month_end["previous_close_offsets"]:
        at = expr_at.replace("@offset@", str(offset))
        parts.append(
            f"    ({at}\n"
            f"     and on ({FLEET_LABELS})\n"
            f"       (max by ({FLEET_LABELS}) (erp_calendar_month_end_close{b.calendar} offset {offset}) == 1))\n"
        )
    return "  or\n".join(parts)
