#!/usr/bin/env bash
# Creates docchat's database and Temporal's two, each owned by its own login role, so the
# application cannot touch Temporal's tables and the reverse.
#
# The postgres image runs this once, when the data volume is first initialised; changing it
# later does nothing to an existing volume. The image may source this file rather than run it,
# so it sets no shell options and does not exit.

: "${APP_DB_PASSWORD:?APP_DB_PASSWORD must be set}"
: "${TEMPORAL_DB_PASSWORD:?TEMPORAL_DB_PASSWORD must be set}"

# Passwords go in as psql variables; :'name' quotes them as SQL literals.
psql --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set app_password="$APP_DB_PASSWORD" \
    --set temporal_password="$TEMPORAL_DB_PASSWORD" <<'SQL'
CREATE ROLE docchat LOGIN PASSWORD :'app_password';
CREATE DATABASE docchat OWNER docchat;

CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
