"""Data governance: audit violations and the audits over their warning threshold, per owner."""

from __future__ import annotations

from exporter.signals.signal import FLEET_LABELS, Signal

VIOLATIONS_BY_OWNER = Signal(
    "erp:audit_violations:sum_by_owner", "sum without (audit, severity, support_line) (erp_audit_violations)"
)
BREACHING_BY_OWNER = Signal(
    "erp:audits_breaching:count_by_owner",
    "count without (audit, severity, support_line) (\n"
    "  erp_audit_violations\n"
    f"  > on ({FLEET_LABELS}, job, instance, target, audit) group_left ()\n"
    "  erp_audit_warning_threshold\n"
    ")\n",
    alert="ErpAuditViolations",
)
