#!/bin/sh
# Waits until the Temporal cluster serves requests, then creates $NAMESPACE unless it exists.
# The `temporal` CLI reads the server from TEMPORAL_ADDRESS.
set -eu

: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must be set}"
NAMESPACE="${NAMESPACE:-default}"
RETENTION="${RETENTION:-168h}"

# Dial the IPv4 address: the reference compose setup saw the CLI fail on the bare service name.
host="${TEMPORAL_ADDRESS%:*}"
if command -v getent >/dev/null && ip="$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')" \
    && [ -n "$ip" ]; then
    TEMPORAL_ADDRESS="$ip:${TEMPORAL_ADDRESS##*:}"
    export TEMPORAL_ADDRESS
fi

attempt=1
until temporal operator cluster health >/dev/null 2>&1; do
    if [ "$attempt" -ge 30 ]; then
        echo "temporal at $TEMPORAL_ADDRESS is not serving after $attempt attempts" >&2
        exit 1
    fi
    attempt=$((attempt + 1))
    sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION"
    echo "namespace $NAMESPACE created (retention $RETENTION)"
fi
