#!/usr/bin/env bash
# Runs once, when the TimescaleDB container initialises its data volume
# (/docker-entrypoint-initdb.d): a read-only login for Grafana's datasource.
# SELECT on every table and view that $POSTGRES_USER creates later (`engagement migrate`),
# nothing else; a statement timeout keeps a heavy dashboard from hogging the database.
set -euo pipefail
: "${GRAFANA_DB_USER:?set GRAFANA_DB_USER}" "${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader="$GRAFANA_DB_USER" -v password="$GRAFANA_DB_PASSWORD" -v owner="$POSTGRES_USER" <<'SQL'
CREATE ROLE :"reader" LOGIN PASSWORD :'password';
ALTER ROLE :"reader" SET statement_timeout = '30s';
ALTER ROLE :"reader" SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"DBNAME" TO :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
