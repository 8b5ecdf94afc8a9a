"""ERP packs: YAML files of read-only queries of an ERP's own tables, per SQL dialect (see loader.py).

This package imports nothing at import time: the config model imports `exporter.packs.model`, and the
loader imports the config loader, so an import here would be circular.
"""
