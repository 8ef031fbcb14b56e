#!/usr/bin/env bash
# Remove the Renkei gateway agent installed by install.sh (also installed as
# /opt/renkei/uninstall.sh).
#
#   sudo ./uninstall.sh [--purge] [--root DIR] [--no-system]
#
# Stops and disables renkei-gateway.service and removes the unit and /opt/renkei. Keeps
# /etc/renkei (configuration, password, CA) and /var/lib/renkei (the outbox: readings the
# broker has not acknowledged yet, and deployed models) and the user renkei, so that a
# later install continues where this one stopped, unless --purge is given: then those go
# too, and undelivered readings are lost.
set -euo pipefail

root=""
purge=0
system=""
unit_name=renkei-gateway.service

log() { echo "renkei-uninstall: $*" >&2; }

while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=1; shift ;;
        --root) root=$2; shift 2 ;;
        --no-system) system=0; shift ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) log "unknown argument $1"; exit 2 ;;
    esac
done
if [ -n "$root" ]; then
    root=$(cd "$root" && pwd)
    [ "$root" = / ] && root=""
fi
if [ -z "$system" ]; then
    if [ -n "$root" ]; then system=0; else system=1; fi
fi
if [ "$system" = 1 ] && [ "$(id -u)" != 0 ]; then
    log "run as root (sudo), or use --root DIR / --no-system"
    exit 1
fi

if [ "$system" = 1 ]; then
    systemctl disable --now "$unit_name" 2>/dev/null || true
fi
rm -f "$root/etc/systemd/system/$unit_name"
if [ "$system" = 1 ]; then
    systemctl daemon-reload
    systemctl reset-failed "$unit_name" 2>/dev/null || true
fi
rm -rf "$root/opt/renkei"
log "removed the service and $root/opt/renkei"

if [ "$purge" = 1 ]; then
    rm -rf "$root/etc/renkei" "$root/var/lib/renkei"
    if [ "$system" = 1 ] && getent passwd renkei >/dev/null; then
        userdel renkei
        getent group renkei >/dev/null && groupdel renkei
    fi
    log "purged $root/etc/renkei, $root/var/lib/renkei and the user renkei"
else
    backlog=$(find "$root/var/lib/renkei" -name 'outbox.sqlite3*' 2>/dev/null | head -n1)
    log "kept $root/etc/renkei (configuration, secrets) and $root/var/lib/renkei" \
        "(state) and the user renkei; --purge removes them"
    if [ -n "$backlog" ]; then
        log "note: $root/var/lib/renkei holds an outbox that may contain readings not yet" \
            "delivered; a new install sends them"
    fi
fi
