#!/bin/sh
# Brings Temporal's two databases to the schema of this admin-tools image's version.
# Safe to repeat: `setup-schema -v 0.0` leaves a versioned database alone and `update-schema`
# applies only the missing migrations. The databases themselves come from deploy/postgres-init/.
# The password is read from SQL_PASSWORD, so it never appears in the process list.
set -eu

: "${SQL_PASSWORD:?SQL_PASSWORD must be set}"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin postgres12 --endpoint postgresql --port 5432 --user temporal "$@"
}

sql_tool --database temporal setup-schema -v 0.0
sql_tool --database temporal update-schema -d "$SCHEMA_ROOT/temporal/versioned"
sql_tool --database temporal_visibility setup-schema -v 0.0
sql_tool --database temporal_visibility update-schema -d "$SCHEMA_ROOT/visibility/versioned"
echo "temporal schema is up to date"
