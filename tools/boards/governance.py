"""The governance board: audits per owner and their violations."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as models

from boards import kit
from boards.kit import Board, Limits, Query, T, sel
from exporter.signals.governance import BREACHING_BY_OWNER, VIOLATIONS_BY_OWNER


def governance(limits: Limits) -> dict[str, Any]:
    board = Board("erp-governance", "ERP data governance scorecard",
                  "Data-quality and compliance audits by owning department: violations against each audit's own "
                  "warning and critical thresholds (the same comparison as the ErpAuditViolations alert).",
                  "now-7d", "5m", ["governance"])
    owner_var = (
        dashboard.QueryVariable("owner").label("Owner").description("The department that owns the audited data.")
        .datasource(kit.DATASOURCE)
        .query(f"label_values({sel('erp_audit_violations', T)}, owner)")
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True).include_all(True).all_value(".*")
        .current(models.VariableOption(selected=True, text="All", value="$__all"))
    )
    owner = 'owner=~"$owner"'
    cmp = limits.audit_comparison
    on = "on (job, instance, target, audit) group_left ()"
    violations = sel("erp_audit_violations", T, owner)
    breaching = sel(BREACHING_BY_OWNER.record, T, owner)
    by_owner = sel(VIOLATIONS_BY_OWNER.record, T, owner)
    status = (f"({violations} {cmp} bool {on} erp_audit_warning_threshold)\n+ on (job, instance, target, audit)\n"
              f"({violations} {cmp} bool {on} erp_audit_critical_threshold)")
    statuses = {0: ("OK", kit.GREEN), 1: ("warning", kit.ORANGE), 2: ("critical", kit.RED)}

    board.row("Scorecard")
    board.stat("Audits over their warning threshold", "Audits in breach (recording rule "
               "erp:audits_breaching:count_by_owner).", "none",
               [Query(f"sum({breaching})", "audits")],
               kit.BAD_AT_ONE, no_value="0")
    board.stat("Audits over their critical threshold", "Audits whose violations are critical.", "none",
               [Query(f"count({violations} {cmp} {on} erp_audit_critical_threshold)", "audits")],
               kit.BAD_AT_ONE, no_value="0")
    board.stat("Violations", "Records in violation, all audits.", "none",
               [Query(f"sum({violations})", "records")])
    board.stat("Audits", "Audits that report.", "none", [Query(f"count({violations})", "audits")])
    board.table("Scorecard by owner", "Per owning department: its audits, how many are over their warning and "
                "critical thresholds, and the records in violation.", "none",
                [Query(f"count by (owner) ({violations})", table=True),
                 Query(f"sum by (owner) ({breaching})", table=True),
                 Query(f"count by (owner) ({violations} {cmp} {on} erp_audit_critical_threshold)", table=True),
                 Query(f"sum by (owner) ({by_owner})", table=True)],
                {"owner": "Owner", "Value #A": "Audits", "Value #B": "Over warning", "Value #C": "Over critical",
                 "Value #D": "Violations"}, width=12, sort_by="Over warning")
    board.bar_gauge("Violations by audit", "Records in violation per audit.", "none",
                    [Query(f"sort_desc(sum by (owner, audit) ({violations}))", "{{owner}}: {{audit}}", instant=True)])
    board.row("Audits")
    board.table("Audits against their thresholds", "Every audit with its violations, its own thresholds and its "
                "status: warning when the violations are over the warning threshold, critical when over the critical "
                "one.", "none",
                [Query(violations, table=True),
                 Query(sel("erp_audit_warning_threshold", T, owner), table=True),
                 Query(sel("erp_audit_critical_threshold", T, owner), table=True),
                 Query(status, table=True)],
                {"owner": "Owner", "audit": "Audit", "category": "Category", "target": "Target",
                 "support_line": "Line", "severity": "Severity", "Value #A": "Violations", "Value #B": "Warning over",
                 "Value #C": "Critical over", "Value #D": "Status"},
                status_column="Status", status_mappings=statuses, sort_by="Status", height=10)
    board.timeseries("Violations by owner", "Records in violation per owning department (recording rule "
                     "erp:audit_violations:sum_by_owner).", "short",
                     [Query(f"sum by (owner) ({by_owner})", "{{owner}}")],
                     stack=True)
    board.timeseries("Audits in breach by owner", "Audits over their warning threshold per owning department.",
                     "short", [Query(f"sum by (owner) ({breaching})", "{{owner}}")], stack=True)
    board.table("Audit runs", "Whether each audit's last run succeeded, and how long ago it last did.", "none",
                [Query(sel("erp_check_success", T, kit.AUDIT_CHECKS), table=True),
                 Query(f"time() - {sel('erp_check_last_success_timestamp_seconds', T, kit.AUDIT_CHECKS)}",
                       table=True)],
                {"target": "Target", "check": "Audit", "Value #A": "Last run", "Value #B": "Since last success"},
                column_units={"Since last success": "s"}, status_column="Last run",
                status_mappings={0: ("failed", kit.RED), 1: ("ok", kit.GREEN)})
    adoption_row(board)
    return board.build(kit.variables(limits, owner_var))


def adoption_row(board: Board) -> None:
    """Active accounts against the users who really work in the ERP, in total and per group."""
    everyone = 'user_group="(all)"'
    groups = 'user_group!="(all)"'
    accounts, active_1d, active_30d = (sel(name, T, everyone) for name in
                                       ("erp_user_accounts", "erp_users_active_1d", "erp_users_active_30d"))
    board.row("Adoption")
    board.stat("Accounts used in the last 30 days", "Share of active ERP accounts that logged in or changed a "
               "document in the last 30 days: accounts nobody uses are licences and attack surface.",
               "percentunit", [Query(f"sum by (target) ({active_30d})\n/\nsum by (target) ({accounts})",
                                     "{{target}}")], width=6)
    board.timeseries("Accounts and active users", "Active ERP accounts, the users active in the last 30 days and in "
                     "the last day (a session or a document they created or changed).", "short",
                     [Query(f"sum by (target) ({accounts})", "{{target}} accounts"),
                      Query(f"sum by (target) ({active_30d})", "{{target}} active in 30 days"),
                      Query(f"sum by (target) ({active_1d})", "{{target}} active today")], width=18)
    board.table("Adoption by group", "Per ERP group: its accounts, the users active in the last day and the last 30 "
                "days, and the share of accounts active in 30 days.", "none",
                [Query(sel("erp_user_accounts", T, groups), table=True),
                 Query(sel("erp_users_active_1d", T, groups), table=True),
                 Query(sel("erp_users_active_30d", T, groups), table=True),
                 Query(f"{sel('erp_users_active_30d', T, groups)}\n/ on (job, instance, target, user_group)\n"
                       f"{sel('erp_user_accounts', T, groups)}", table=True)],
                {"target": "Target", "user_group": "Group", "Value #A": "Accounts", "Value #B": "Active today",
                 "Value #C": "Active in 30 days", "Value #D": "Share active"},
                column_units={"Share active": "percentunit"}, sort_by="Accounts", height=10)
