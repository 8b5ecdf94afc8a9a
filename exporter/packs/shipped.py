"""The ERP packs shipped with the exporter: one folder per ERP under exporter/packs/, holding the ERP's
signal queries (`queries.yml`, used by `kind: pack` entries) and its data-governance audits
(`audits.yml`, used by the `packs:` list of `kind: audits` entries)."""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent
QUERIES_FILE = "queries.yml"
AUDITS_FILE = "audits.yml"


def _shipped_with(file_name: str) -> list[str]:
    return sorted(path.parent.name for path in SHIPPED_DIR.glob(f"*/{file_name}"))


def shipped_query_packs() -> list[str]:
    """The ERPs whose pack ships signal queries (exporter/packs/<erp>/queries.yml)."""
    return _shipped_with(QUERIES_FILE)


def shipped_audit_packs() -> list[str]:
    """The ERPs whose pack ships audits (exporter/packs/<erp>/audits.yml)."""
    return _shipped_with(AUDITS_FILE)


def queries_path(erp: str) -> Path:
    """The signal queries of a shipped ERP pack."""
    return SHIPPED_DIR / erp / QUERIES_FILE


def audits_path(erp: str) -> Path:
    """The audits of a shipped ERP pack."""
    return SHIPPED_DIR / erp / AUDITS_FILE
