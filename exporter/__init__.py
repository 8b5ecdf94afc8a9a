"""erp-exporter: a Prometheus exporter that keeps an ERP system healthy for years after go-live."""

__version__ = "0.1.0"
