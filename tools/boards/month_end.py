"""The month-end board: this close against the previous ones."""

from __future__ import annotations

from typing import Any

from generated_files import duration_seconds

from boards import kit
from boards.kit import Board, Limits, Query, T, sel
from boards.slo import error_budget_row
from exporter.signals.month_end import DOCUMENTS_PER_HOUR, POSTING_BACKLOG, USERS_PEAK_1H, WINDOW_RECORD
from exporter.signals.transactions import LATENCY_P95, RUNS_RATE


def month_end(limits: Limits) -> dict[str, Any]:
    board = Board("erp-month-end", "ERP month-end close",
                  "Users, response times and transactions now against the same point of the previous close "
                  "(4 weeks back, or 5 when that was no close), the closing periods shaded, and the trends toward "
                  "the limits that the early-warning alerts watch.", "now-7d", "1m", ["month-end"])
    calendar = limits.calendar_matcher()
    horizon = duration_seconds(limits.month_end["horizon"])
    window = limits.month_end["trend_window"]
    horizon_text = limits.month_end["horizon"]
    days_before = int(limits.month_end["days_before_close"])
    latency = "ErpTransactionLatencyHigh"
    load_factor = "ErpMonthEndLoadAbovePreviousClose"
    latency_factor = "ErpMonthEndLatencyAbovePreviousClose"
    slow = "ErpDatabaseSlow"
    closing = {0: ("open", kit.GREEN), 1: ("closing", kit.ORANGE)}

    board.row("Calendar")
    board.state_timeline("Closing periods", "Each closing period of each business calendar: on (closing) or off.",
                         [Query(f"max by (calendar, period) ({sel('erp_calendar_closing_period', calendar)})",
                                "{{calendar}}: {{period}}")], closing, kit.Steps(kit.GREEN, ((1, kit.ORANGE),)),
                         width=12)
    board.stat("Business days to the next close", f"0 while a period is on; the month-end early warning opens "
               f"{days_before} business days before (month_end.days_before_close).", "none",
               [Query(f"min by (calendar, period) ({sel('erp_calendar_workdays_to_close', calendar)})",
                      "{{calendar}}: {{period}}")], kit.Steps(kit.ORANGE, ((days_before + 1, kit.GREEN),)),
               width=6, height=6)
    board.stat("Month-end window", "1 while a close is on or starts within the early-warning window "
               "(recording rule erp:month_end_window:active).", "none",
               [Query(WINDOW_RECORD, "window")], kit.Steps(kit.GREEN, ((1, kit.ORANGE),)), width=6, height=6,
               mappings={0: ("quiet", kit.GREEN), 1: ("close", kit.ORANGE)})

    board.row("Now against the previous close")
    users_now = f"sum by (target) ({sel('erp_users_logged_in', T)})"
    board.timeseries("Logged-in users", "Logged-in ERP users now, and at the same point of the previous close.",
                     "short",
                     [Query(users_now, "{{target}} now"),
                      Query(kit.previous_close(
                          lambda o: f"sum by (target) ({sel('erp_users_logged_in', T)} offset {o})", limits),
                          "{{target}} previous close")],
                     kit.above(limits.value("ErpMonthEndUsersTrend", "warning")))
    peak = sel(USERS_PEAK_1H.record, T)
    board.timeseries("Users against the previous close", f"Peak users of the last hour divided by the same at the "
                     f"previous close ({load_factor} above {limits.value(load_factor, 'warning')}x, with at least "
                     f"{limits.value(load_factor, 'min_users')} users).", kit.FACTOR,
                     [Query(against_previous_close(peak, limits), "{{target}}")],
                     kit.above(limits.value(load_factor, "warning")))
    p95 = sel(LATENCY_P95.record, T, kit.NOT_JOB_LOG)
    board.timeseries("Business transaction p95", f"p95 now and at the previous close ({latency}).", "s",
                     [Query(p95, "{{transaction}} on {{target}} now"),
                      Query(kit.previous_close(lambda o: f"{p95} offset {o}", limits),
                            "{{transaction}} on {{target}} previous close")],
                     kit.above(limits.value(latency, "warning"), limits.value(latency, "critical")))
    board.timeseries("p95 against the previous close", f"p95 now divided by the p95 at the previous close "
                     f"({latency_factor} above {limits.value(latency_factor, 'warning')}x, when p95 is at least "
                     f"{limits.value(latency_factor, 'min_seconds')} s).", kit.FACTOR,
                     [Query(against_previous_close(p95, limits), "{{transaction}} on {{target}}")],
                     kit.above(limits.value(latency_factor, "warning")))
    rate = f"sum by (target, transaction) ({sel(RUNS_RATE.record, T)})"
    board.timeseries("Transactions per second", "Runs per second of each business transaction and scheduled job, "
                     "now and at the previous close.", "ops",
                     [Query(rate, "{{transaction}} on {{target}} now"),
                      Query(kit.previous_close(
                          lambda o: f"sum by (target, transaction) ({sel(RUNS_RATE.record, T)} offset {o})",
                          limits), "{{transaction}} on {{target}} previous close")])
    probe = sel("erp_database_probe_duration_seconds", T)
    board.timeseries("Database round trip", f"Round trip of the probe query now and at the previous close ({slow}).",
                     "s", [Query(probe, "{{target}} now"),
                           Query(kit.previous_close(lambda o: f"{probe} offset {o}", limits),
                                 "{{target}} previous close")],
                     kit.above(limits.value(slow, "warning"), limits.value(slow, "critical")))

    board.row("Business documents")
    for event, title, what in (("created", "Documents created per hour", "created"),
                               ("posted", "Documents posted, confirmed and done per hour", "posted")):
        events = 'event="created"' if event == "created" else 'event!="created"'
        now = f"sum by (document, event) ({sel(DOCUMENTS_PER_HOUR.record, T, events)})"
        board.timeseries(title, f"Business documents {what} in the last hour by type, now and at the same point of "
                         "the previous close (erp_business_documents_total, each document counted once).", "short",
                         [Query(now, "{{document}} {{event}} now"),
                          Query(kit.previous_close(
                              lambda o, events=events: "sum by (document, event) ("
                              f"{sel(DOCUMENTS_PER_HOUR.record, T, events)} offset {o})", limits),
                              "{{document}} {{event}} previous close")], width=12)
    backlog = "ErpMonthEndPostingBacklog"
    board.timeseries("Posting backlog", f"Documents waiting to be posted by type (account moves in draft, invoices "
                     f"in draft or validated); {backlog} warns in the month-end window above "
                     f"{limits.value(backlog, 'warning')} while it still grows.", "short",
                     [Query(f"sum by (target, document) ({sel('erp_documents_unposted', T)})",
                            "{{document}} on {{target}}"),
                      Query(sel(POSTING_BACKLOG.record, T), "all on {{target}}")],
                     kit.above(limits.value(backlog, "warning")), width=12)

    error_budget_row(board, limits)

    board.row(f"Early warning: where the trend of the last {window} is in {horizon_text}")
    board.timeseries("Users forecast", f"predict_linear of logged-in users ({window} fit, {horizon_text} ahead) "
                     "against the capacity the system is sized for (ErpMonthEndUsersTrend).", "short",
                     [Query(users_now, "{{target}} now"),
                      Query(f"predict_linear({sel('erp_users_logged_in', T)}[{window}], {horizon})",
                            f"{{{{target}}}} in {horizon_text}")],
                     kit.above(limits.value("ErpMonthEndUsersTrend", "warning")), width=8)
    board.timeseries("Connections forecast", "Share of the connection limit the trend reaches "
                     "(ErpMonthEndConnectionsTrend).", "percentunit",
                     [Query(f"predict_linear({sel('erp_database_connections', T)}[{window}], {horizon})\n/\n"
                            f"{sel('erp_database_max_connections', T)}", f"{{{{target}}}} in {horizon_text}")],
                     kit.above(limits.value("ErpMonthEndConnectionsTrend", "warning")), width=8, minimum=0)
    board.timeseries("p95 forecast", f"Where the p95 trend is in {horizon_text} (ErpMonthEndLatencyTrend: the "
                     f"{latency} warning objective).", "s",
                     [Query(f"predict_linear({p95}[{window}], {horizon})", f"{{{{transaction}}}} on {{{{target}}}} in "
                            f"{horizon_text}")],
                     kit.above(limits.value(latency, "warning")), width=8)
    return board.build(kit.variables(limits), [kit.closing_period_annotation(limits)])


def against_previous_close(series: str, limits: Limits) -> str:
    """`series` now divided by the same at the previous close (1.3 reads "30 % more than last time")."""
    return f"{series}\n/\n({kit.previous_close(lambda o: f'{series} offset {o}', limits)})"
