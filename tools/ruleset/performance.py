"""Performance and background jobs: database response, business transactions, the job log."""

from __future__ import annotations

import copy
import re
from typing import Any

from exporter.signals.transactions import FAILURE_RATIO, LATENCY_P95
from ruleset.builder import Group, RuleBuilder, promql


def groups(b: RuleBuilder) -> list[Group]:
    rules = b.pair(
        "ErpDatabaseSlow", "database", "2",
        "erp_database_probe_duration_seconds > @threshold@",
        "ERP database {{ $labels.target }} answers slowly",
        "The probe query on {{ $labels.target }} has taken {{ $value | humanizeDuration }} for @for@ "
        "(above @shown@).",
        fmt="seconds",
    )
    rules += latency_rules(b)
    rules += b.pair(
        "ErpTransactionFailureRatioHigh", "transaction", "2",
        FAILURE_RATIO.selected('source!="job_log"') + " > @threshold@",
        "Transaction {{ $labels.transaction }} fails on {{ $labels.target }}",
        "{{ $value | humanizePercentage }} of the runs of transaction {{ $labels.transaction }} "
        "({{ $labels.source }}) on {{ $labels.target }} failed over the last 10 minutes (above @shown@).",
        fmt="ratio",
    )
    jobs = b.pair(
        "ErpJobQueueBacklog", "jobs", "2",
        "erp_queue_tasks_pending > @threshold@",
        "ERP task queue backlog on {{ $labels.target }}",
        "{{ $value | humanize }} tasks have been waiting in the queue of {{ $labels.target }} for @for@ "
        "(above @shown@).",
    )
    jobs += b.pair(
        "ErpJobQueueStalled", "jobs", "2",
        "erp_queue_oldest_pending_age_seconds > @threshold@",
        "ERP task queue on {{ $labels.target }} is not moving",
        "The oldest pending task on {{ $labels.target }} has waited {{ $value | humanizeDuration }} "
        "(above @shown@): the queue workers are stopped or stuck.",
        fmt="seconds",
    )
    jobs += b.pair(
        "ErpScheduledJobFailing", "jobs", "2",
        promql("""
            sum without (reason) (increase(erp_transaction_failures_total{source="job_log"}[1h]))
            > @threshold@
        """),
        "Scheduled job {{ $labels.transaction }} fails on {{ $labels.target }}",
        "Failed runs of scheduled job {{ $labels.transaction }} on {{ $labels.target }} in the last hour "
        "(the ERP's job log): about {{ $value | humanize }}.",
        escalate="warning",
    )
    jobs += b.pair(
        "ErpScheduledJobsOverdue", "jobs", "2",
        "erp_scheduled_job_max_delay_seconds > @threshold@",
        "Scheduled jobs on {{ $labels.target }} do not start",
        "A scheduled job on {{ $labels.target }} is due but has not started for "
        "{{ $value | humanizeDuration }} (above @shown@): the ERP scheduler is stopped or busy.",
        fmt="seconds",
    )
    jobs += b.pair(
        "ErpTaskErrors", "jobs", "2",
        "erp_task_errors > @threshold@",
        "Unsolved errors of ERP jobs and tasks on {{ $labels.target }}",
        "The ERP on {{ $labels.target }} (pack {{ $labels.pack }}) has held errors of scheduled jobs or "
        "background tasks that nobody has solved for @for@: {{ $value | humanize }} open or processing "
        "(above @shown@).",
        escalate="warning",
    )
    return [Group("erp-performance", rules), Group("erp-background-jobs", jobs)]


def latency_rules(b: RuleBuilder) -> list[dict[str, Any]]:
    """p95 over the objective; a transaction with its own objective gets its own rules."""
    name = "ErpTransactionLatencyHigh"
    spec = b.a(name)
    overrides: dict[str, dict[str, float]] = (spec.get("overrides") or {}).get("values") or {}
    summary = "Transaction {{ $labels.transaction }} is slow on {{ $labels.target }}"
    description = (
        "The 95th percentile of transaction {{ $labels.transaction }} ({{ $labels.source }}) on "
        "{{ $labels.target }} has been {{ $value | humanizeDuration }} for @for@, over its objective "
        "of @shown@."
    )
    excluded = "|".join(re.escape(key) for key in sorted(overrides))
    default_selector = '{source!="job_log"' + (f',transaction!~"{excluded}"' if excluded else "") + "}"
    rules = b.pair(
        name, "transaction", "2",
        f"{LATENCY_P95.record}{default_selector} > @threshold@",
        summary, description, fmt="seconds",
    )
    for transaction, values in sorted(overrides.items()):
        sub = copy.deepcopy(b)
        sub.alerts = {**b.alerts, name: {**spec, **values}}
        selector = f'{{source!="job_log",transaction="{transaction}"}}'
        rules += sub.pair(
            name, "transaction", "2",
            f"{LATENCY_P95.record}{selector} > @threshold@",
            summary, description, fmt="seconds",
        )
    return rules
