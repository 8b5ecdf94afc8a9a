"""Audit sets shipped with the exporter, one YAML file per ERP product (`audits: packs: [tryton]`)."""
