"""Data governance: audits over their thresholds, per owner."""

from __future__ import annotations

from exporter.signals.signal import FLEET_LABELS
from ruleset.builder import Group, RuleBuilder, fill, promql, rule_dict


def groups(b: RuleBuilder) -> list[Group]:
    on = f"on ({FLEET_LABELS}, job, instance, target, audit) group_left ()"  # thresholds: "above this"
    from_series = {"support_line": "{{ $labels.support_line }}", "owner": "{{ $labels.owner }}"}
    description = (
        "{{ $value | humanize }} records violate audit {{ $labels.audit }} ({{ $labels.category }}) on "
        "{{ $labels.target }}, owned by {{ $labels.owner }}; its @level@ threshold is "
        "{{ with printf `erp_audit_@level@_threshold{site=%q,target=%q,audit=%q}` $labels.site $labels.target "
        "$labels.audit "
        "| query }}{{ . | first | value | humanize }}{{ end }}. "
        "See the offending records with: erp-exporter audit {{ $labels.audit }}"
    )
    summary = "Audit {{ $labels.audit }} finds violations on {{ $labels.target }}"
    name = "ErpAuditViolations"
    rules = [
        # The audit's own severity (a series label) applies from its warning threshold ...
        rule_dict(
            name,
            promql(f"""
                (erp_audit_violations > {on} erp_audit_warning_threshold)
                unless on ({FLEET_LABELS}, job, instance, target, audit)
                (erp_audit_violations > {on} erp_audit_critical_threshold)
            """),
            b.for_(name),
            {"severity": "{{ $labels.severity }}", **from_series, "component": "audit"},
            b.annotations(name, summary, fill(description, level="warning")),
        ),
        # ... and its critical threshold makes it critical.
        rule_dict(
            name,
            f"erp_audit_violations > {on} erp_audit_critical_threshold",
            b.for_(name),
            {"severity": "critical", **from_series, "component": "audit"},
            b.annotations(name, summary, fill(description, level="critical")),
        ),
    ]
    return [Group("erp-data-governance", rules)]
