#!/bin/sh
# Start Renkei's broker (docker-compose.yml, service "mosquitto"; POSIX sh, busybox-safe).
#
# 1. Builds Mosquitto's password file from the secrets named mqtt-user-<username> (one
#    file per MQTT user, holding its password; compose makes them from .env). Passwords are
#    hashed by mosquitto_passwd (PBKDF2-SHA512) and fed on its standard input, never on a
#    command line.
# 2. Copies the TLS material (secrets mqtt-tls-ca, mqtt-tls-cert, mqtt-tls-key) into a
#    private directory readable only by the broker's user: Mosquitto 2 reads these after
#    dropping root privileges, and bind-mounted secrets keep the host's owner and mode.
# 3. On the first start (no dynamic-security.json in the data directory yet) creates the
#    dynamic-security plugin's file (compose.conf) with one admin client, whose password is
#    the secret mqtt-dynsec-admin, and every default access denied. Later starts keep the
#    file: it holds the enrolled gateways (renkei cloud gateways enroll/redeem/revoke).
#    The admin's password is then changed with `mosquitto_ctrl dynsec setClientPassword`.
# 4. Replaces itself with `mosquitto -c compose.conf`.
#
# Paths can be overridden (the integration tests run this script outside a container):
#   RENKEI_SECRETS            directory of the secrets          (/run/secrets)
#   RENKEI_MOSQUITTO_AUTH     generated passwd + TLS copies     (/mosquitto/auth)
#   RENKEI_MOSQUITTO_CONF     broker configuration              (/mosquitto/config/compose.conf)
#   RENKEI_MOSQUITTO_DATA     persistence directory             (/mosquitto/data)
#   RENKEI_MOSQUITTO_OWNER    user the broker runs as           (mosquitto)
#   RENKEI_MOSQUITTO_BIN      broker binary                     (mosquitto, from PATH)
#   RENKEI_MOSQUITTO_CTRL     mosquitto_ctrl binary             (mosquitto_ctrl, from PATH)
#   RENKEI_DYNSEC_ADMIN       dynamic-security admin user       (renkei-dynsec-admin)
set -eu

secrets=${RENKEI_SECRETS:-/run/secrets}
auth=${RENKEI_MOSQUITTO_AUTH:-/mosquitto/auth}
conf=${RENKEI_MOSQUITTO_CONF:-/mosquitto/config/compose.conf}
data=${RENKEI_MOSQUITTO_DATA:-/mosquitto/data}
owner=${RENKEI_MOSQUITTO_OWNER:-mosquitto}
broker=${RENKEI_MOSQUITTO_BIN:-mosquitto}
ctrl=${RENKEI_MOSQUITTO_CTRL:-mosquitto_ctrl}
dynsec_admin=${RENKEI_DYNSEC_ADMIN:-renkei-dynsec-admin}

die() {
    echo "mosquitto-entrypoint: $*" >&2
    exit 1
}

umask 077
mkdir -p "$auth" "$data"
passwd_new="$auth/passwd.new"
rm -f "$passwd_new"
: >"$passwd_new"

users=0
for file in "$secrets"/mqtt-user-*; do
    [ -f "$file" ] || continue
    user=${file##*/mqtt-user-}
    case $user in
        *[!A-Za-z0-9_.-]* | "") die "bad MQTT user name in secret ${file##*/}" ;;
    esac
    # The secret is the password; a trailing newline (editors add one) is not part of it.
    password=$(cat "$file")
    [ -n "$password" ] || die "secret ${file##*/} is empty"
    case $password in
        *"
"*) die "secret ${file##*/} has more than one line" ;;
    esac
    printf '%s\n%s\n' "$password" "$password" \
        | mosquitto_passwd "$passwd_new" "$user" >/dev/null \
        || die "mosquitto_passwd failed for user $user"
    users=$((users + 1))
done
[ "$users" -gt 0 ] || die "no mqtt-user-* secrets in $secrets: nobody could log in"

for pair in mqtt-tls-ca:ca.crt mqtt-tls-cert:server.crt mqtt-tls-key:server.key; do
    src="$secrets/${pair%%:*}"
    [ -s "$src" ] || die "missing secret ${pair%%:*} (see deploy/tls/make-dev-certs.sh)"
    cp "$src" "$auth/${pair#*:}.new"
    mv "$auth/${pair#*:}.new" "$auth/${pair#*:}"
done
mv "$passwd_new" "$auth/passwd"

dynsec="$data/dynamic-security.json"
if [ ! -s "$dynsec" ]; then
    admin_secret="$secrets/mqtt-dynsec-admin"
    [ -s "$admin_secret" ] || die "missing secret mqtt-dynsec-admin (the dynamic-security admin's password)"
    [ ! -e "$secrets/mqtt-user-$dynsec_admin" ] || die "user $dynsec_admin is also an mqtt-user-* secret"
    admin_password=$(cat "$admin_secret")
    rm -f "$dynsec.new"
    # mosquitto_ctrl hashes the password (PBKDF2-SHA512); it takes it as an argument, seen
    # only inside this container for the moment the command runs, on the first start.
    "$ctrl" dynsec init "$dynsec.new" "$dynsec_admin" "$admin_password" >/dev/null \
        || die "mosquitto_ctrl dynsec init failed"
    # Deny by default, as the ACL file: the plugin's own default lets a client receive
    # whatever it subscribed to. Only the defaultACLAccess key has `: true` after this name.
    sed 's/"publishClientReceive":[[:space:]]*true/"publishClientReceive": false/' \
        "$dynsec.new" >"$dynsec.tmp" && mv "$dynsec.tmp" "$dynsec.new"
    grep -q '"publishClientReceive": false' "$dynsec.new" \
        || die "could not set the dynamic-security default access"
    mv "$dynsec.new" "$dynsec"
    echo "mosquitto-entrypoint: created $dynsec (admin user $dynsec_admin)" >&2
fi

if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
    chown -R "$owner" "$auth" "$data"
fi
echo "mosquitto-entrypoint: $users MQTT users; starting the broker" >&2
exec "$broker" -c "$conf"
