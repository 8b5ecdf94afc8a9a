"""The exporter's own board: checks, scrapes, workers, reloads."""

from __future__ import annotations

from typing import Any

from boards import kit
from boards.kit import Board, Limits, Query, T, sel


def exporter_health(limits: Limits) -> dict[str, Any]:
    job = f'job="{limits.selectors["exporter_job"]}"'
    board = Board("erp-exporter", "ERP exporter health",
                  "The exporter's own health: scrapes, checks (success, duration against the timeout, errors by "
                  "reason, staleness), workers, connection pools, and the alerting pipeline.", "now-6h", "30s",
                  ["exporter"])
    results = {0: ("failed", kit.RED), 1: ("ok", kit.GREEN)}
    board.row("Exporter")
    board.stat("Exporter up", "Prometheus' scrape of the exporter (ErpExporterDown fires on 0).", "none",
               [Query(sel("up", job, kit.INST), "{{instance}}")], kit.BAD_AT_ZERO, mappings=kit.UP_MAP)
    board.stat("Configuration loaded", "Whether the last configuration (re)load succeeded "
               "(ErpExporterConfigReloadFailed).", "none",
               [Query(sel("erp_exporter_config_last_reload_successful", kit.INST), "{{instance}}")], kit.BAD_AT_ZERO,
               mappings={0: ("FAILED", kit.RED), 1: ("OK", kit.GREEN)})
    board.stat("Alerting pipeline", "The Watchdog alert always fires: when it does not, rule evaluation is broken.",
               "none", [Query(sel("ALERTS", 'alertname="Watchdog"', 'alertstate="firing"'), "Watchdog")],
               kit.BAD_AT_ZERO, mappings={1: ("Watchdog firing", kit.GREEN)}, no_value="NO WATCHDOG")
    board.stat("Monitoring login can write", "1 when a target's monitoring login could change data "
               "(ErpDatabaseLoginCanWrite); it should be read-only.", "none",
               [Query(sel("erp_database_login_can_write", T), "{{target}}")], kit.BAD_AT_ONE,
               mappings={0: ("read-only", kit.GREEN), 1: ("CAN WRITE", kit.RED)})
    board.timeseries("Scrape duration", "How long Prometheus' scrape of /metrics took.", "s",
                     [Query(sel("scrape_duration_seconds", job, kit.INST), "{{instance}}")], width=8)
    board.timeseries("Samples per scrape", "Samples each scrape returned.", "short",
                     [Query(sel("scrape_samples_scraped", job, kit.INST), "{{instance}}")], width=8)
    board.timeseries("Renders per second", "Times the exposition was rendered (it is cached between scrapes).",
                     "ops",
                     [Query(f"rate({sel('erp_exporter_renders_total', kit.INST)}[$__rate_interval])", "{{instance}}")],
                     width=8)
    board.row("Checks")
    board.state_timeline("Check results", "Result of each check's last run.",
                         [Query(sel("erp_check_success", kit.CHECKS), "{{target}} {{check}}")], results,
                         kit.BAD_AT_ZERO, height=10)
    board.timeseries("Check duration against its timeout", "Duration of each check's last run / its timeout: "
                     "near 100% it is about to be cancelled.", "percentunit",
                     [Query(f"{sel('erp_check_duration_seconds', kit.CHECKS)}\n/\n"
                            f"{sel('erp_check_timeout_seconds', kit.CHECKS)}",
                            "{{target}} {{check}}")], minimum=0)
    board.timeseries("Check start delay against its interval", "How late each check's last scheduled run "
                     "started / its interval: waiting for a free worker (ErpChecksStartingLate).", "percentunit",
                     [Query(f"{sel('erp_check_start_delay_seconds', kit.CHECKS)}\n/\n"
                            f"{sel('erp_check_interval_seconds', kit.CHECKS)}",
                            "{{target}} {{check}}")],
                     kit.above(limits.value("ErpChecksStartingLate", "share")), minimum=0)
    board.timeseries("Check errors by reason", "Failed runs per reason (timeout, connect, auth, query, guard, "
                     "other); ErpCheckFailing when a check fails every run.", "short",
                     [Query(f"sum by (target, check, reason) (increase({sel('erp_check_errors_total', kit.CHECKS)}"
                            "[$__rate_interval])) > 0", "{{target}} {{check}}: {{reason}}")])
    board.stat("Stale checks", "Checks whose last result is older than two intervals plus the timeout "
               "(ErpCheckStale); their values are withheld.", "none",
               [Query(f"sum({sel('erp_check_stale', kit.CHECKS)})", "stale")], kit.BAD_AT_ONE)
    board.timeseries("Time since last success", "Per check; a check that never succeeded has no line.", "s",
                     [Query(f"time() - {sel('erp_check_last_success_timestamp_seconds', kit.CHECKS)}",
                            "{{target}} {{check}}")], width=18)
    board.timeseries("Series per check", "Series each check published on its last run (capped by series_limit).",
                     "short", [Query(sel("erp_check_series", kit.CHECKS), "{{target}} {{check}}")])
    board.timeseries("Series dropped", "Series dropped because a check exceeded its series_limit.", "short",
                     [Query(f"sum by (target, check) (increase({sel('erp_check_series_dropped_total', kit.CHECKS)}"
                            "[$__rate_interval]))", "{{target}} {{check}}")])
    board.row("Workers and connections")
    board.timeseries("Workers busy", "Worker threads running a check, and how many there are.", "short",
                     [Query(sel("erp_exporter_workers_busy", kit.INST), "{{instance}} busy"),
                      Query(sel("erp_exporter_workers", kit.INST), "{{instance}} workers")], width=8)
    board.timeseries("Abandoned workers", "Workers given up on because a driver call did not return even after "
                     "cancel (a hung server), and the most that are replaced.", "short",
                     [Query(sel("erp_exporter_abandoned_workers", kit.INST), "{{instance}} abandoned"),
                      Query(sel("erp_exporter_abandoned_workers_limit", kit.INST), "{{instance}} limit")], width=8)
    board.timeseries("Connection pools", "Connections the exporter holds to each database, against its own limit.",
                     "short", [Query(sel("erp_database_pool_connections", T), "{{target}} open"),
                               Query(sel("erp_database_pool_max_connections", T), "{{target}} limit")], width=8)
    board.stat("Hung connections", "Connections stuck in a query that did not return even after cancel "
               "(ErpDatabaseHungConnections).", "none",
               [Query(sel("erp_database_pool_hung_connections", T), "{{target}}")],
               kit.above(limits.value("ErpDatabaseHungConnections", "warning"), count=True), width=8)
    board.timeseries("Connect backoff", "Seconds until a target that failed to connect is tried again.", "s",
                     [Query(sel("erp_database_connect_backoff_seconds", T), "{{target}}")], width=8)
    board.table("Exporter version", "Version of each exporter and of its Python.", "none",
                [Query(sel("erp_exporter_build_info", kit.INST), table=True)],
                {"instance": "Exporter", "version": "Version", "python_version": "Python"}, width=8, height=5)
    return board.build(kit.variables(limits))
