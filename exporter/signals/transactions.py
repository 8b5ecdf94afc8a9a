"""Business transactions: latency quantiles, run rate and failure ratio of each transaction."""

from __future__ import annotations

from exporter.signals.signal import Signal

# step="" is the whole transaction; its steps are observed under their own step label.
LATENCY_P50 = Signal(
    "erp:transaction_duration_seconds:p50",
    'histogram_quantile(0.5, rate(erp_transaction_duration_seconds_bucket{step=""}[5m]))',
)
LATENCY_P95 = Signal(
    "erp:transaction_duration_seconds:p95",
    'histogram_quantile(0.95, rate(erp_transaction_duration_seconds_bucket{step=""}[5m]))',
    alert="ErpTransactionLatencyHigh",
)
RUNS_RATE = Signal("erp:transactions:rate5m", 'rate(erp_transaction_duration_seconds_count{step=""}[5m])')
# Only successful runs are observed in the histogram, so the runs are successes + failures; a transaction
# that never succeeded has no _count series: its ratio is failures / failures.
FAILURE_RATIO = Signal(
    "erp:transaction_failures:ratio_rate10m",
    "sum without (reason) (rate(erp_transaction_failures_total[10m]))\n"
    "/\n"
    "(\n"
    '    rate(erp_transaction_duration_seconds_count{step=""}[10m])\n'
    "    + sum without (reason) (rate(erp_transaction_failures_total[10m]))\n"
    "  or\n"
    "    sum without (reason) (rate(erp_transaction_failures_total[10m]))\n"
    ")\n",
    alert="ErpTransactionFailureRatioHigh",
)
