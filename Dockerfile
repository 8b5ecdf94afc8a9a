# syntax=docker/dockerfile:1
# erp-exporter: Debian 12 slim, unixODBC and the Debian ODBC drivers (PostgreSQL, MariaDB/MySQL, SQLite),
# a non-root user. Other databases (SQL Server, Oracle, HANA, DB2) need their vendor's ODBC driver: add it
# in a derived image and register it in /etc/odbcinst.ini.
#
#   docker build -t erp-exporter .
#   docker run -p 9861:9861 -v $PWD/erp-exporter.yml:/etc/erp-exporter/erp-exporter.yml:ro erp-exporter

FROM debian:bookworm-slim AS build
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# pyodbc, psutil and bcrypt come as manylinux wheels: no compiler is needed.
RUN python3 -m venv /opt/erp-exporter \
 && /opt/erp-exporter/bin/pip install --no-cache-dir /src

FROM debian:bookworm-slim
# Versions come from the Debian 12 release (security updates included) rather than pins that go stale.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 unixodbc odbc-postgresql odbc-mariadb libsqliteodbc \
    ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin erp-exporter
COPY --from=build /opt/erp-exporter /opt/erp-exporter
ENV PATH=/opt/erp-exporter/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The configuration (and any password files) is mounted here; passwords come from ${ENV} or password_file.
WORKDIR /etc/erp-exporter
USER 10001:10001
EXPOSE 9861
# Liveness of the HTTP server only (/-/ready also waits for the first round of checks). With a web config
# (TLS or basic auth) this plain-HTTP check fails: use the orchestrator's probe with credentials instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9861/-/healthy', timeout=4)"]
ENTRYPOINT ["erp-exporter"]
CMD ["--config.file=/etc/erp-exporter/erp-exporter.yml", "--web.listen-address=:9861"]
