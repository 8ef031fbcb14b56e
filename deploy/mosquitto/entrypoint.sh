#!/bin/sh
# Start Renkei's broker (docker-compose.yml, service "mosquitto"; POSIX sh, busybox-safe).
#
# Every MQTT user has a secret mqtt-user-<username> holding its password (one file per
# user; compose makes them from .env). Users and their rights live in Mosquitto's
# dynamic-security plugin (compose.conf); the static password file + ACL file are only the
# documented fallback (RENKEI_MQTT_STATIC_AUTH=1, deploy/README.md).
#
# 1. Checks the mqtt-user-* secrets (name, one non-empty line each). Only with
#    RENKEI_MQTT_STATIC_AUTH=1: builds Mosquitto's password file from them (hashed by
#    mosquitto_passwd, PBKDF2-SHA512, the password on its standard input) and writes
#    $auth/static.d/static-auth.conf (password_file + acl_file), which compose.conf's
#    `include_dir /mosquitto/auth/static.d` loads; otherwise that directory stays empty.
# 2. Copies the TLS material (secrets mqtt-tls-ca, mqtt-tls-cert, mqtt-tls-key) into a
#    private directory readable only by the broker's user: Mosquitto 2 reads these after
#    dropping root privileges, and bind-mounted secrets keep the host's owner and mode.
# 3. On the first start (no dynamic-security.json in the data directory yet) creates the
#    plugin's file with one admin client, whose password is the secret mqtt-dynsec-admin,
#    and every default access denied; then starts Mosquitto briefly with only the plugin
#    and a loopback listener (RENKEI_MOSQUITTO_SETUP_PORT) and, with `mosquitto_ctrl
#    dynsec`, gives every mqtt-user-* user its role from the roles file (dynsec-roles,
#    rendered by `renkei cloud broker-acl --roles-out` from the same rules as the ACL
#    file) and creates the user with its password (on mosquitto_ctrl's standard input) and
#    that role; then stops it. Later starts keep the file: it holds the users added since
#    (mosquitto_ctrl, renkei cloud gateways enroll/redeem/revoke), and changed passwords.
# 4. Replaces itself with `mosquitto -c compose.conf`.
#
# Paths can be overridden (the integration tests run this script outside a container):
#   RENKEI_SECRETS            directory of the secrets          (/run/secrets)
#   RENKEI_MOSQUITTO_AUTH     generated passwd + TLS copies     (/mosquitto/auth)
#   RENKEI_MOSQUITTO_CONF     broker configuration              (/mosquitto/config/compose.conf)
#   RENKEI_MOSQUITTO_ACL      static ACL file (fallback only)   (/mosquitto/config/acl)
#   RENKEI_MOSQUITTO_ROLES    dynamic-security roles file       (/mosquitto/config/dynsec-roles)
#   RENKEI_MOSQUITTO_DATA     persistence directory             (/mosquitto/data)
#   RENKEI_MOSQUITTO_OWNER    user the broker runs as           (mosquitto)
#   RENKEI_MOSQUITTO_BIN      broker binary                     (mosquitto, from PATH)
#   RENKEI_MOSQUITTO_CTRL     mosquitto_ctrl binary             (mosquitto_ctrl, from PATH)
#   RENKEI_MOSQUITTO_PLUGIN   dynamic-security plugin           (compose.conf's `plugin` line;
#                             none: no dynamic security, only with RENKEI_MQTT_STATIC_AUTH=1)
#   RENKEI_MOSQUITTO_SETUP_PORT  loopback port of the first-start broker (1884)
#   RENKEI_DYNSEC_ADMIN       dynamic-security admin user       (renkei-dynsec-admin)
#   RENKEI_MQTT_STATIC_AUTH   1: also load the static password file + ACL  (0)
set -eu

secrets=${RENKEI_SECRETS:-/run/secrets}
auth=${RENKEI_MOSQUITTO_AUTH:-/mosquitto/auth}
conf=${RENKEI_MOSQUITTO_CONF:-/mosquitto/config/compose.conf}
acl=${RENKEI_MOSQUITTO_ACL:-/mosquitto/config/acl}
roles=${RENKEI_MOSQUITTO_ROLES:-/mosquitto/config/dynsec-roles}
data=${RENKEI_MOSQUITTO_DATA:-/mosquitto/data}
owner=${RENKEI_MOSQUITTO_OWNER:-mosquitto}
broker=${RENKEI_MOSQUITTO_BIN:-mosquitto}
ctrl=${RENKEI_MOSQUITTO_CTRL:-mosquitto_ctrl}
setup_port=${RENKEI_MOSQUITTO_SETUP_PORT:-1884}
dynsec_admin=${RENKEI_DYNSEC_ADMIN:-renkei-dynsec-admin}
static_auth=${RENKEI_MQTT_STATIC_AUTH:-0}

die() {
    echo "mosquitto-entrypoint: $*" >&2
    exit 1
}

case $static_auth in
    0 | 1) ;;
    *) die "RENKEI_MQTT_STATIC_AUTH must be 0 or 1, not '$static_auth'" ;;
esac

umask 077
mkdir -p "$auth" "$auth/static.d" "$data"
passwd_new="$auth/passwd.new"
rm -f "$passwd_new" "$auth/static.d/static-auth.conf"
: >"$passwd_new"

# The password of user $1 (its secret without the trailing newline editors add).
password_of() {
    cat "$secrets/mqtt-user-$1"
}

users=0
for file in "$secrets"/mqtt-user-*; do
    [ -f "$file" ] || continue
    user=${file##*/mqtt-user-}
    case $user in
        *[!A-Za-z0-9_.-]* | "") die "bad MQTT user name in secret ${file##*/}" ;;
    esac
    password=$(password_of "$user")
    [ -n "$password" ] || die "secret ${file##*/} is empty"
    case $password in
        *"
"*) die "secret ${file##*/} has more than one line" ;;
    esac
    if [ "$static_auth" = 1 ]; then
        printf '%s\n%s\n' "$password" "$password" \
            | mosquitto_passwd "$passwd_new" "$user" >/dev/null \
            || die "mosquitto_passwd failed for user $user"
    fi
    users=$((users + 1))
done
[ "$users" -gt 0 ] || die "no mqtt-user-* secrets in $secrets: nobody could log in"

for pair in mqtt-tls-ca:ca.crt mqtt-tls-cert:server.crt mqtt-tls-key:server.key; do
    src="$secrets/${pair%%:*}"
    [ -s "$src" ] || die "missing secret ${pair%%:*} (see deploy/tls/make-dev-certs.sh)"
    cp "$src" "$auth/${pair#*:}.new"
    mv "$auth/${pair#*:}.new" "$auth/${pair#*:}"
done
if [ "$static_auth" = 1 ]; then
    mv "$passwd_new" "$auth/passwd"
    printf 'password_file %s\nacl_file %s\n' "$auth/passwd" "$acl" \
        >"$auth/static.d/static-auth.conf"
    echo "mosquitto-entrypoint: RENKEI_MQTT_STATIC_AUTH=1: static password file + ACL loaded" >&2
else
    rm -f "$passwd_new" "$auth/passwd"
fi

# --- First start: the dynamic-security file with every mqtt-user-* user -----------------
setup_pid=
stop_setup_broker() {
    if [ -n "$setup_pid" ]; then
        kill "$setup_pid" 2>/dev/null || true
        wait "$setup_pid" 2>/dev/null || true
        setup_pid=
    fi
}
trap stop_setup_broker EXIT

# `mosquitto_ctrl dynsec ARGS...` against the first-start broker. mosquitto_ctrl exits 0
# even when the plugin refuses a command, so its "Error" lines decide.
dynsec_ctrl() {
    "$ctrl" -h 127.0.0.1 -p "$setup_port" -u "$dynsec_admin" -P "$admin_password" \
        dynsec "$@" >/dev/null 2>"$auth/ctrl.err" \
        && ! grep -q 'Error' "$auth/ctrl.err" \
        || die "mosquitto_ctrl dynsec $1 ${2:-} failed: $(grep -v '^$' "$auth/ctrl.err" | grep -iv 'encryption\|visible on the network' | head -n 3)"
}

# Gives every mqtt-user-* user its role (lines of $roles) and creates it in "$1", the new
# plugin file, through a broker listening only on 127.0.0.1:$setup_port.
provision_users() {
    file=$1
    [ -s "$roles" ] || die "missing roles file $roles (renkei cloud broker-acl --roles-out)"
    for f in "$secrets"/mqtt-user-*; do
        u=${f##*/mqtt-user-}
        grep -qxF "createRole renkei:$u" "$roles" \
            || die "user $u has no role in $roles: render it (renkei cloud broker-acl --roles-out)"
    done
    printf '%s\n' \
        "per_listener_settings false" \
        "allow_anonymous false" \
        "persistence false" \
        "log_dest stderr" \
        "log_type error" \
        "log_type warning" \
        "user $owner" \
        "plugin $plugin" \
        "plugin_opt_config_file $file" \
        "listener $setup_port 127.0.0.1" >"$auth/setup.conf"
    if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
        chown -R "$owner" "$data"
    fi
    "$broker" -c "$auth/setup.conf" &
    setup_pid=$!
    tries=0
    until "$ctrl" -h 127.0.0.1 -p "$setup_port" -u "$dynsec_admin" -P "$admin_password" \
        dynsec getDefaultACLAccess 2>/dev/null | grep -q publishClientSend; do
        kill -0 "$setup_pid" 2>/dev/null || die "the first-start broker on 127.0.0.1:$setup_port exited"
        tries=$((tries + 1))
        [ "$tries" -le 100 ] || die "the first-start broker on 127.0.0.1:$setup_port did not answer in 10 s"
        sleep 0.1
    done
    # Only the roles of users with a secret; lines are `createRole R` / `addRoleACL R T TOPIC allow`.
    while read -r verb role rest; do
        case $verb in
            "" | "#"*) continue ;;
            createRole | addRoleACL) ;;
            *) die "$roles: unexpected line: $verb $role" ;;
        esac
        [ -f "$secrets/mqtt-user-${role#renkei:}" ] || continue
        # shellcheck disable=SC2086 # $rest is "ACLTYPE TOPIC allow": no spaces in topics
        set -f
        dynsec_ctrl "$verb" "$role" $rest
        set +f
    done <"$roles"
    for f in "$secrets"/mqtt-user-*; do
        u=${f##*/mqtt-user-}
        # The password on mosquitto_ctrl's standard input (its prompt, twice), not argv.
        printf '%s\n%s\n' "$(password_of "$u")" "$(password_of "$u")" \
            | dynsec_ctrl createClient "$u"
        dynsec_ctrl addClientRole "$u" "renkei:$u"
    done
    stop_setup_broker
    rm -f "$auth/setup.conf" "$auth/ctrl.err"
    for f in "$secrets"/mqtt-user-*; do
        u=${f##*/mqtt-user-}
        grep -q "\"username\":[[:space:]]*\"$u\"" "$file" \
            || die "user $u is missing from the dynamic-security file after setup"
    done
}

# The plugin compose.conf loads (its `plugin` line); none: the static fallback alone.
plugin=${RENKEI_MOSQUITTO_PLUGIN:-$(sed -n 's/^plugin[[:space:]]\{1,\}//p' "$conf" 2>/dev/null | head -n 1)}
if [ -z "$plugin" ] && [ "$static_auth" != 1 ]; then
    die "$conf loads no dynamic-security plugin and RENKEI_MQTT_STATIC_AUTH is not 1: nobody could log in"
fi
dynsec="$data/dynamic-security.json"
if [ -n "$plugin" ] && [ ! -s "$dynsec" ]; then
    admin_secret="$secrets/mqtt-dynsec-admin"
    [ -s "$admin_secret" ] || die "missing secret mqtt-dynsec-admin (the dynamic-security admin's password)"
    [ ! -e "$secrets/mqtt-user-$dynsec_admin" ] || die "user $dynsec_admin is also an mqtt-user-* secret"
    admin_password=$(cat "$admin_secret")
    rm -f "$dynsec.new"
    # mosquitto_ctrl hashes the password (PBKDF2-SHA512); it takes the admin's password as
    # an argument, seen only inside this container while the first start runs.
    "$ctrl" dynsec init "$dynsec.new" "$dynsec_admin" "$admin_password" >/dev/null \
        || die "mosquitto_ctrl dynsec init failed"
    # Deny by default, as the ACL file: the plugin's own default lets a client receive
    # whatever it subscribed to. Only the defaultACLAccess key has `: true` after this name.
    sed 's/"publishClientReceive":[[:space:]]*true/"publishClientReceive": false/' \
        "$dynsec.new" >"$dynsec.tmp" && mv "$dynsec.tmp" "$dynsec.new"
    grep -q '"publishClientReceive": false' "$dynsec.new" \
        || die "could not set the dynamic-security default access"
    provision_users "$dynsec.new"
    mv "$dynsec.new" "$dynsec"
    echo "mosquitto-entrypoint: created $dynsec (admin user $dynsec_admin, $users MQTT users)" >&2
elif [ -n "$plugin" ]; then
    # A later start changes nothing; it only says which secrets' users cannot log in (a
    # file from before this release, or users deleted since: deploy/README.md).
    for f in "$secrets"/mqtt-user-*; do
        u=${f##*/mqtt-user-}
        grep -q "\"username\":[[:space:]]*\"$u\"" "$dynsec" \
            || echo "mosquitto-entrypoint: warning: user $u (secret ${f##*/}) is not in $dynsec: it cannot log in (deploy/README.md, MQTT: authentication)" >&2
    done
fi
trap - EXIT

if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
    chown -R "$owner" "$auth" "$data"
fi
echo "mosquitto-entrypoint: $users MQTT users; starting the broker" >&2
exec "$broker" -c "$conf"
