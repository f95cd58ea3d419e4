#!/usr/bin/env bash
# The roles and databases of the bundled PostgreSQL. The postgres image runs this once, from
# /docker-entrypoint-initdb.d/, on the first start of an empty data directory, as the superuser
# POSTGRES_USER; nothing else connects as that superuser.
#
#   airflow        LOGIN, owns database `airflow`: Airflow's metadata and Celery results
#   recsys_writer  LOGIN, owns schema `public` of database `recsys`: the pipeline creates, fills,
#                  comments and drops its tables and the view recommendations_latest there
#                  (recsys_core/publish/: unqualified names, so the first schema of the search_path)
#   recsys_reader  LOGIN, read-only: SELECT on every table and view of recsys.public, also those the
#                  writer creates later (default privileges), nothing else
#
# No role is a superuser or may create databases or roles; PUBLIC may connect to neither database.
# Passwords come from the environment (AIRFLOW_DB_PASSWORD, RECSYS_WRITER_PASSWORD,
# RECSYS_READER_PASSWORD) and reach psql through \getenv, never a command line. The names can be
# overridden (AIRFLOW_DB, AIRFLOW_DB_USER, RECSYS_DB, RECSYS_WRITER, RECSYS_READER) so the test
# (tests/deploy/test_compose.py) runs this very script on a shared server under throwaway names;
# docker-compose.yml keeps the defaults.
set -euo pipefail

: "${AIRFLOW_DB_PASSWORD:?must be set}" "${RECSYS_WRITER_PASSWORD:?must be set}" \
  "${RECSYS_READER_PASSWORD:?must be set}"
export AIRFLOW_DB_PASSWORD RECSYS_WRITER_PASSWORD RECSYS_READER_PASSWORD

psql -v ON_ERROR_STOP=1 --no-psqlrc \
  --username "${POSTGRES_USER:?}" --dbname "${POSTGRES_DB:-$POSTGRES_USER}" \
  -v airflow_db="${AIRFLOW_DB:-airflow}" \
  -v airflow_user="${AIRFLOW_DB_USER:-airflow}" \
  -v recsys_db="${RECSYS_DB:-recsys}" \
  -v writer="${RECSYS_WRITER:-recsys_writer}" \
  -v reader="${RECSYS_READER:-recsys_reader}" <<'SQL'
\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv writer_password RECSYS_WRITER_PASSWORD
\getenv reader_password RECSYS_READER_PASSWORD

-- Airflow's metadata database, owned by its own role (owning the database gives it schema public)
CREATE ROLE :"airflow_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'airflow_password';
CREATE DATABASE :"airflow_db" OWNER :"airflow_user";
REVOKE ALL ON DATABASE :"airflow_db" FROM PUBLIC;

-- The warehouse: a writer for the pipeline, a reader for analysts
CREATE ROLE :"writer" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'writer_password';
CREATE ROLE :"reader" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'reader_password';
CREATE DATABASE :"recsys_db";
REVOKE ALL ON DATABASE :"recsys_db" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"recsys_db" TO :"writer", :"reader";
-- the pipeline names its tables without a schema: pin the search_path to the schema it owns
ALTER ROLE :"writer" IN DATABASE :"recsys_db" SET search_path = public;
ALTER ROLE :"reader" IN DATABASE :"recsys_db" SET search_path = public;
ALTER ROLE :"reader" IN DATABASE :"recsys_db" SET default_transaction_read_only = on;

\connect :"recsys_db"
ALTER SCHEMA public OWNER TO :"writer";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"writer" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
SQL
