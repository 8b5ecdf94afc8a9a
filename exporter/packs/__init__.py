"""ERP packs: one folder per ERP (exporter/packs/tryton/) with its signal queries (`queries.yml`: read-only
queries of the ERP's own tables, per SQL dialect) and its data-governance audits (`audits.yml`).

This package imports nothing at import time: the config model imports `exporter.packs.model`.
"""
