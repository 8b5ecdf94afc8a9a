"""The exporter itself: failing and stale checks, reloads, scrapes, and the Watchdog."""

from __future__ import annotations

from exporter.signals.signal import FLEET_LABELS
from ruleset.builder import Group, RuleBuilder, fill, promql


def groups(b: RuleBuilder) -> list[Group]:
    rules = b.single(
        "ErpExporterDown", "critical", "exporter", "2",
        f"up{{{b.job}}} == 0",
        "erp-exporter {{ $labels.instance }} cannot be scraped",
        "Prometheus has failed to scrape {{ $labels.instance }} (job {{ $labels.job }}) for @for@ "
        "(up = {{ $value }}): no ERP metric from it is current and its alerts cannot fire.",
    )
    rules += b.single(
        "ErpCheckFailing", "warning", "exporter", "2",
        promql("""
            sum without (reason) (increase(erp_check_errors_total[@for@])) > 0
            and
            erp_check_success == 0
        """),
        "Check {{ $labels.check }} of {{ $labels.target }} keeps failing",
        "Check {{ $labels.check }} (kind {{ $labels.kind }}) of target \"{{ $labels.target }}\" on "
        "{{ $labels.instance }} has failed every run for @for@ (about {{ $value | humanize }} failed "
        "runs); see erp_check_errors_total by reason and the exporter's log.",
    )
    rules += b.single(
        "ErpCheckStale", "warning", "exporter", "2",
        promql("""
            time() - erp_check_last_run_timestamp_seconds
            and
            erp_check_stale == 1
        """),
        "Results of check {{ $labels.check }} of {{ $labels.target }} are stale",
        "Check {{ $labels.check }} of target \"{{ $labels.target }}\" on {{ $labels.instance }} last ended "
        "a run {{ $value | humanizeDuration }} ago; its values are withheld from /metrics.",
    )
    late_share = float(b.a("ErpChecksStartingLate")["share"])
    rules += b.single(
        "ErpChecksStartingLate", "warning", "exporter", "2",
        fill(promql("""
            max by (@fleet@, job, instance) (erp_check_start_delay_seconds / erp_check_interval_seconds) > @share@
        """), fleet=FLEET_LABELS, share=f"{late_share:g}"),
        "Checks of erp-exporter {{ $labels.instance }} start late",
        f"The latest start of a check on {{{{ $labels.instance }}}} was {{{{ $value | humanizePercentage }}}} "
        f"of its interval after it was due (over {late_share:.0%}) for @for@: the workers cannot keep up, "
        "so values age and some runs will be skipped.",
    )
    vanished_window = str(b.a("ErpCheckVanished")["window"])
    rules += b.single(
        "ErpCheckVanished", "info", "exporter", "2",
        fill(promql("""
            group by (@fleet@, job, instance, target, check) (max_over_time(erp_check_success[@window@]))
            unless on (@fleet@, job, instance, target, check)
            erp_check_success
        """), fleet=FLEET_LABELS, window=vanished_window),
        "Check {{ $labels.check }} of {{ $labels.target }} vanished",
        f"Check {{{{ $labels.check }}}} of target \"{{{{ $labels.target }}}}\" reported within the last "
        f"{vanished_window} but not for @for@ (vanished = {{{{ $value }}}}): a configuration change "
        "removed it, or the exporter lost it.",
    )
    rules += b.single(
        "ErpExporterConfigReloadFailed", "warning", "exporter", "2",
        "erp_exporter_config_last_reload_successful == 0",
        "erp-exporter {{ $labels.instance }} runs on an old configuration",
        "The last configuration reload of {{ $labels.instance }} failed (successful = {{ $value }}); it "
        "keeps running on the previous configuration.",
    )
    rules += b.single(
        "ErpDatabaseLoginCanWrite", "warning", "exporter", "2",
        "erp_database_login_can_write == 1",
        "The monitoring login of {{ $labels.target }} can change data",
        "The exporter's login on {{ $labels.target }} is a superuser or has write privileges "
        "(can write = {{ $value }}) for @for@; it must be read-only.",
    )
    rules += b.single(
        "Watchdog", "info", "meta", "2",
        "vector(1)",
        "Alerting pipeline heartbeat",
        "Always firing (value {{ $value }}) so that the heartbeat receiver notices when Prometheus, "
        "Alertmanager or the route between them stops working.",
    )
    return [Group("erp-exporter", rules)]
