"""Subcommands that run checks once and print what they found (erp-exporter audit)."""
