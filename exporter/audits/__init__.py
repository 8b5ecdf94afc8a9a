"""Data-governance audits: SQL written by data owners, a violation count per audit, sample keys for humans."""
