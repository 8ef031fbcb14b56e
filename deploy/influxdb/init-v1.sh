#!/bin/bash
# InfluxDB 2 first-start script for Renkei (docker-compose.yml mounts it into
# /docker-entrypoint-initdb.d/; the influxdb image runs it once, right after the initial
# setup, with the `influx` CLI logged in as the admin and DOCKER_INFLUXDB_INIT_* exported,
# including DOCKER_INFLUXDB_INIT_BUCKET_ID). It must stay executable: the image runs it
# with run-parts.
#
# Renkei's ingest, API and Grafana speak InfluxDB's v1 API (InfluxQL, /write, /query),
# which InfluxDB 2 serves through
#   - a DBRP mapping: v1 database RENKEI_INFLUX_DATABASE (retention policy "autogen")
#     -> the bucket created by the setup;
#   - v1 authorizations (username/password, HTTP Basic), one per service, least privilege:
#       ingest:  read + write   (writes points; it also sends `CREATE DATABASE` through
#                                /query at start, which needs read access to be answered)
#       api:     read           (measured availability, firm export)
#       grafana: read           (dashboards, alerts)
# Nothing here is re-run on later starts; to change a password later:
#   docker compose exec influxdb influx v1 auth set-password --username NAME
set -euo pipefail

: "${DOCKER_INFLUXDB_INIT_ORG:?}"
: "${DOCKER_INFLUXDB_INIT_BUCKET_ID:?the influxdb image exports it after the setup}"
database=${RENKEI_INFLUX_DATABASE:-renkei}

influx v1 dbrp create \
    --org "$DOCKER_INFLUXDB_INIT_ORG" \
    --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
    --db "$database" \
    --rp autogen \
    --default

# create_auth USER PASSWORD MODE: MODE is "read" or "readwrite".
create_auth() {
    local user=$1 password=$2 mode=$3
    local args=(--org "$DOCKER_INFLUXDB_INIT_ORG" --username "$user" --password "$password"
        --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID"
        --description "renkei: $user ($mode)")
    if [[ $mode == readwrite ]]; then
        args+=(--write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID")
    fi
    influx v1 auth create "${args[@]}" >/dev/null
    echo "renkei: v1 authorization for $user ($mode) on database $database"
}

create_auth "${INFLUXDB_INGEST_USER:?}" "${INFLUXDB_INGEST_PASSWORD:?}" readwrite
create_auth "${INFLUXDB_API_USER:?}" "${INFLUXDB_API_PASSWORD:?}" read
create_auth "${INFLUXDB_GRAFANA_USER:?}" "${INFLUXDB_GRAFANA_PASSWORD:?}" read
