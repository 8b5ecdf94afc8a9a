"""Availability: targets down or unmonitored, process groups gone, logins failing, certificates."""

from __future__ import annotations

from ruleset.builder import Group, RuleBuilder


def groups(b: RuleBuilder) -> list[Group]:
    rules = b.single(
        "ErpTargetDown", "critical", "availability", "2",
        "erp_up == 0",
        "ERP database {{ $labels.target }} is down",
        "The exporter has not been able to run its probe query on {{ $labels.target }} for @for@ "
        "(erp_up = {{ $value }}). Users of this ERP database cannot work.",
    )
    rules += b.single(
        "ErpTargetAbsent", "critical", "availability", "2",
        f"absent(erp_up{{{b.job}}})",
        "No ERP database is monitored by job {{ $labels.job }}",
        "Prometheus has had no erp_up series from job {{ $labels.job }} for @for@ "
        "(absent = {{ $value }}): the exporter is not scraped or reports no database target, so "
        "nothing about the ERP's databases would alert.",
    )
    rules += b.single(
        "ErpProcessGroupGone", "critical", "availability", "1",
        "erp_process_group_processes == 0",
        "ERP process group {{ $labels.group }} is gone on {{ $labels.instance }}",
        "No process of group {{ $labels.group }} has run on {{ $labels.instance }} for @for@ "
        "({{ $value }} processes).",
    )
    rules += b.pair(
        "ErpLoginFailuresHigh", "availability", "1",
        "erp_login_failures > @threshold@",
        "Many failed ERP logins on {{ $labels.target }}",
        "{{ $value | humanize }} failed logins were recorded on {{ $labels.target }} within the ERP "
        "pack's window (warning above @shown@): locked-out users or someone guessing passwords.",
        escalate="warning",
    )
    rules += b.pair(
        "ErpTlsCertificateExpiring", "availability", "2",
        "(erp_tls_certificate_expiry_timestamp_seconds - time()) / 86400 < @threshold@",
        "TLS certificate of ERP endpoint {{ $labels.transaction }} expires soon",
        "The TLS certificate of the endpoint used by transaction {{ $labels.transaction }} on "
        "{{ $labels.target }} expires in {{ $value | humanize }} days (below @shown@ days).",
    )
    return [Group("erp-availability", rules)]
