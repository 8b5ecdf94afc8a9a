"""The database: the share of its connection limit in use, and how fast it grows."""

from __future__ import annotations

from exporter.signals.signal import Signal

CONNECTIONS_USED = Signal(
    "erp:database_connections_used:ratio",
    "erp_database_connections / erp_database_max_connections",
    alert="ErpDatabaseConnectionsSaturated",
)
SIZE_GROWTH = Signal("erp:database_size_bytes:deriv6h", "deriv(erp_database_size_bytes[6h])")
