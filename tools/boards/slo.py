"""The error-budget row the overview and the month-end boards share (exporter/signals/slo.py)."""

from __future__ import annotations

from boards.kit import FACTOR, Board, Limits, Query, T, sel
from exporter.signals import slo

LEGEND = "{{transaction}} {{slo}} on {{target}}"


def error_budget_row(board: Board, limits: Limits) -> None:
    """Budget left over the SLO period, and the burn rates the page and the ticket watch."""
    slos = limits.raw["slos"]
    period = str(slos["period"])
    default = slos["default"]
    objectives = (f"availability {default['availability']}, latency {default['latency']} within "
                  f"{default['latency_threshold']} s by default; per transaction in thresholds.yml `slos`")
    board.row("Error budgets")
    board.bar_gauge("Error budget left", f"Share of the {period} error budget each business transaction has left "
                    f"({objectives}); below 0 the objective is missed for the period.", "percentunit",
                    [Query(sel(slo.BUDGET_REMAINING, T), LEGEND)], width=8)
    page, ticket = slo.PAGE_WINDOWS[0], slo.TICKET_WINDOWS[0]
    board.timeseries("Burn rate, page windows", f"How many times faster than the objective allows the budget is "
                     f"spent over {page.long} (ErpTransactionErrorBudgetBurn pages when {page.long} and {page.short} "
                     f"both burn over {page.factor:g}x, or 6h and 30m over 6x).", FACTOR,
                     [Query(sel(slo.burn_rate_record(page.long), T), LEGEND)], width=8)
    board.timeseries("Burn rate, ticket windows", f"The same over {ticket.long} (a ticket when {ticket.long} and "
                     f"{ticket.short} both burn over {ticket.factor:g}x, or 3d and 6h over 1x).", FACTOR,
                     [Query(sel(slo.burn_rate_record(ticket.long), T), LEGEND)], width=8)
