#!/usr/bin/env bash
# Make a private CA and the MQTT broker's server certificate (openssl, ECDSA P-256).
#
#   deploy/tls/make-dev-certs.sh [--dir DIR] [--host NAME]... [--days N] [--renew]
#
#   --dir DIR    where to write (default: RENKEI_SECRETS_DIR or deploy/secrets)
#   --host NAME  extra DNS name (or IPv4 address) of the broker, e.g. the public name
#                gateways connect to (mqtt.example.com); repeatable. "mosquitto" (the compose
#                service), "localhost" and 127.0.0.1 are always included.
#   --days N     validity of the server certificate (default 825)
#   --renew      issue a new server certificate even if one exists (the CA is kept)
#
# Writes ca.crt (give it to every gateway: /etc/renkei/tls/ca.crt), ca.key (keep it offline
# once the certificates are issued), server.crt and server.key (docker-compose.yml mounts
# ca.crt, server.crt and server.key as secrets). Idempotent: an existing CA is reused
# (gateways keep trusting it) and an existing server certificate is kept unless --renew.
# With a CA of your own, put its ca.crt and your server.crt/server.key in the directory
# instead of running this.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dir=${RENKEI_SECRETS_DIR:-$here/../secrets}
days=825
renew=0
hosts=(mosquitto localhost 127.0.0.1)

while [ $# -gt 0 ]; do
    case $1 in
        --dir) dir=$2; shift 2 ;;
        --host) hosts+=("$2"); shift 2 ;;
        --days) days=$2; shift 2 ;;
        --renew) renew=1; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "make-dev-certs: unknown argument $1" >&2; exit 2 ;;
    esac
done

command -v openssl >/dev/null || { echo "make-dev-certs: openssl is needed" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
umask 077

if [ ! -s ca.key ] || [ ! -s ca.crt ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.crt -days 3650 -subj "/O=Renkei/CN=Renkei private CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    chmod 644 ca.crt
    echo "make-dev-certs: new CA in $dir/ca.crt" >&2
fi

if [ "$renew" -eq 1 ] || [ ! -s server.key ] || [ ! -s server.crt ]; then
    san=""
    for h in "${hosts[@]}"; do
        if [[ $h =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
            san+="${san:+,}IP:$h"
        else
            san+="${san:+,}DNS:$h"
        fi
    done
    ext=$(mktemp)
    csr=$(mktemp)
    trap 'rm -f "$ext" "$csr"' EXIT
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=$san" >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout server.key.new -out "$csr" -subj "/O=Renkei/CN=${hosts[0]}" 2>/dev/null
    openssl x509 -req -in "$csr" -CA ca.crt -CAkey ca.key -days "$days" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out server.crt.new 2>/dev/null
    chmod 600 server.key.new
    chmod 644 server.crt.new
    mv server.key.new server.key
    mv server.crt.new server.crt
    echo "make-dev-certs: server certificate for $san ($days days) in $dir/server.crt" >&2
fi
