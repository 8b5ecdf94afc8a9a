"""Which Tryton JSON-RPC calls only read: the HTTP counterpart of the SQL guard (exporter/db/guard.py).

The config refuses a step that could write, and the HTTP transaction check adds the session steps itself.
"""

from __future__ import annotations

TRYTON_SESSION_STEPS = ("login", "logout")

# Tryton model methods that only read (RPC readonly=True in trytond), and the session-free common calls.
READ_ONLY_TRYTON_MODEL_METHODS = frozenset(
    {
        "read",
        "search",
        "search_count",
        "search_read",
        "fields_get",
        "default_get",
        "fields_view_get",
        "view_toolbar_get",
        "autocomplete",
        "export_data",
        "export_data_domain",
        "resources",
        "history_revisions",
        "get_preferences",
    }
)
READ_ONLY_TRYTON_COMMON_METHODS = frozenset({"common.server.version", "common.db.list"})


def tryton_method_refusal(method: str) -> str | None:
    """Why a Tryton JSON-RPC method may not be a step (None: it may). Steps must only read."""
    if method in ("common.db.login", "common.db.logout"):
        return "login and logout are added by the exporter: list only the calls in between"
    if method in READ_ONLY_TRYTON_COMMON_METHODS:
        return None
    parts = method.split(".")
    if parts[0] == "model" and len(parts) >= 3 and parts[-1] in READ_ONLY_TRYTON_MODEL_METHODS:
        return None
    return (
        f"method {method!r} is not a reading method; allowed: model.<model>.<method> with method one of "
        f"{', '.join(sorted(READ_ONLY_TRYTON_MODEL_METHODS))}, or {', '.join(sorted(READ_ONLY_TRYTON_COMMON_METHODS))}"
    )
