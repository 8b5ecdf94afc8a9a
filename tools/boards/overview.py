"""The overview board: is the ERP up, fast and used, at one glance."""

from __future__ import annotations

import re
from typing import Any

from boards import kit
from boards.kit import Board, Limits, Query, T, sel
from boards.slo import error_budget_row
from exporter.signals.database import CONNECTIONS_USED
from exporter.signals.month_end import USERS_PEAK_1H
from exporter.signals.transactions import FAILURE_RATIO, LATENCY_P95, RUNS_RATE


def overview(limits: Limits) -> dict[str, Any]:
    board = Board("erp-overview", "ERP overview",
                  "Health at a glance, per target: is each ERP database up and fast, how many users are on, do the "
                  "checks run, what is firing.", "now-6h", "30s", ["overview"])
    slow = "ErpDatabaseSlow"
    latency = LATENCY_P95.alert
    failures = FAILURE_RATIO.alert
    saturated = CONNECTIONS_USED.alert
    users = USERS_PEAK_1H.alert
    task_errors = "ErpTaskErrors"
    board.row("Availability")
    board.stat("Database up", "erp_up: did the database answer the probe query (ErpTargetDown fires on 0).", "none",
               [Query(sel("erp_up", T), "{{target}}")], kit.BAD_AT_ZERO, width=8, mappings=kit.UP_MAP)
    board.timeseries("Database round trip", f"Round trip of the probe query; ErpDatabaseSlow above "
                     f"{limits.value(slow, 'warning')} s (warning) and {limits.value(slow, 'critical')} s (critical).",
                     "s", [Query(sel("erp_database_probe_duration_seconds", T), "{{target}}")],
                     kit.above(limits.value(slow, "warning"), limits.value(slow, "critical")), width=8)
    board.timeseries("Login time", "How long opening the probe's connection took (login included).", "s",
                     [Query(sel("erp_database_connect_duration_seconds", T), "{{target}}")], width=8)
    board.stat("ERP processes", "Running processes of each ERP process group (ErpProcessGroupGone fires on 0).",
               "none", [Query(sel("erp_process_group_processes", kit.INST), "{{group}} on {{instance}}")],
               kit.BAD_AT_ZERO, width=8)
    board.stat("Certificate expires in", "Time left until the certificate of each https business transaction expires "
               f"(ErpTlsCertificateExpiring below {limits.value('ErpTlsCertificateExpiring', 'warning')} and "
               f"{limits.value('ErpTlsCertificateExpiring', 'critical')} days).", "s",
               [Query(f"{sel('erp_tls_certificate_expiry_timestamp_seconds', kit.ENV)} - time()",
                      "{{transaction}}")],
               kit.below(limits.value("ErpTlsCertificateExpiring", "warning") * 86400,
                     limits.value("ErpTlsCertificateExpiring", "critical") * 86400), width=8)
    board.table("ERP and database versions", "What runs on each target: the ERP pack's product and version, and the "
                "database's.", "none",
                [Query(f"max by (target, dbms, database_version) (label_replace({sel('erp_database_info', T)}, "
                       '"database_version", "$1", "version", "(.*)"))', table=True),
                 Query(f"max by (target, erp, erp_version) (label_replace({sel('erp_info', T)}, "
                       '"erp_version", "$1", "version", "(.*)"))', table=True)],
                {"target": "Target", "erp": "ERP", "erp_version": "ERP version", "dbms": "Database",
                 "database_version": "Database version"}, width=8)
    board.row("Load")
    label, per_target = limits.overrides(users)
    user_overrides = [(f"^{re.escape(name)}$", kit.above(values["warning"])) for name, values in per_target.items()
                      if label == "target"]
    board.timeseries("Logged-in ERP users", "Distinct users with an ERP session active within the pack's window; the "
                     f"line is the capacity the system is sized for ({users}).", "short",
                     [Query(f"sum by (target) ({sel('erp_users_logged_in', T)})", "{{target}}")],
                     kit.above(limits.value(users, "warning")), overrides=user_overrides)
    board.timeseries("ERP sessions", "ERP sessions active within the pack's window.", "short",
                     [Query(f"sum by (target) ({sel('erp_sessions_active', T)})", "{{target}}")])
    board.timeseries("Database connections used", "Connections against the database server's limit "
                     f"({saturated}).", "percentunit",
                     [Query(sel(CONNECTIONS_USED.record, T), "{{target}}")],
                     kit.above(limits.value(saturated, "warning"), limits.value(saturated, "critical")), minimum=0)
    t_label, objectives = limits.overrides(latency)
    latency_overrides = [(f"^{re.escape(name)} on .*", kit.above(values.get("warning"), values.get("critical")))
                         for name, values in objectives.items() if t_label == "transaction"]
    board.timeseries("Business transaction p95", f"p95 of each synthetic business transaction over 5 minutes "
                     f"({latency}; scheduled jobs have no objective and are left out).", "s",
                     [Query(sel(LATENCY_P95.record, T, kit.NOT_JOB_LOG),
                            "{{transaction}} on {{target}}")],
                     kit.above(limits.value(latency, "warning"), limits.value(latency, "critical")),
                     overrides=latency_overrides)
    board.timeseries("Business transaction failures", f"Failed share of each business transaction's runs over 10 "
                     f"minutes ({failures}).", "percentunit",
                     [Query(sel(FAILURE_RATIO.record, T, kit.NOT_JOB_LOG),
                            "{{transaction}} on {{target}}")],
                     kit.above(limits.value(failures, "warning"), limits.value(failures, "critical")), minimum=0)
    board.timeseries("Transaction and job runs", "Runs per second of the synthetic business transactions (sql, "
                     "http) and of the ERP's scheduled jobs (job_log).", "ops",
                     [Query(f"sum by (target, source) ({sel(RUNS_RATE.record, T)})",
                            "{{source}} on {{target}}")])
    board.timeseries("ERP task errors", "Errors of scheduled jobs and background tasks that nobody has solved yet "
                     f"(open or processing; {task_errors} above {limits.value(task_errors, 'warning')} for "
                     f"{limits.value(task_errors, 'for')}).", "short",
                     [Query(f"sum by (target) ({sel('erp_task_errors', T)})", "{{target}}")],
                     kit.above(limits.value(task_errors, "warning"), count=True), minimum=0)
    error_budget_row(board, limits)
    board.row("Checks and alerts")
    board.stat("Checks failing", "Checks whose last run failed, per target (ErpCheckFailing); checks of the exporter "
               "itself (host, backups, calendars) show as target \"exporter\".", "none",
               [Query(f'label_replace(sum by (target) ({sel("erp_check_success", T)} == bool 0), '
                      f'"target", "exporter", "target", "")', "{{target}}")],
               kit.BAD_AT_ONE, width=8)
    board.stat("Check errors in the time range", "Failed check runs within the dashboard's time range, per target.",
               "none", [Query("label_replace(sum by (target) "
                              f'(increase({sel("erp_check_errors_total", T)}[$__range])), '
                              f'"target", "exporter", "target", "")', "{{target}}")], width=8)
    board.stat("Alerts firing", "Firing alerts by severity (the Watchdog, which always fires, left out).", "none",
               [Query(f"count by (severity) ({sel('ALERTS', kit.FIRING, kit.NOT_WATCHDOG, T)})",
                      "{{severity}}")], kit.BAD_AT_ONE, width=8, no_value="0")
    board.table("Firing alerts", "Every firing alert with its severity, support line and target.", "none",
                [Query(sel("ALERTS", kit.FIRING, kit.NOT_WATCHDOG, T), table=True)],
                {"alertname": "Alert", "severity": "Severity", "support_line": "Line", "target": "Target",
                 "component": "Component", "owner": "Owner", "escalated": "Escalated"}, height=7)
    return board.build(kit.variables(limits))
