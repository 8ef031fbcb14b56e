#!/usr/bin/env bash
# Install, upgrade or roll back the Renkei gateway agent on a Raspberry Pi (Raspberry Pi OS
# or Debian, arm64; Python >= 3.11). Idempotent: running it again with the same bundle
# changes nothing. Details: deploy/pi/README.md.
#
#   sudo ./install.sh [--bundle DIR] [--config FILE] [--env-file FILE] [--ca FILE]
#   sudo ./install.sh --rollback
#
#   --bundle DIR      the bundle made by build-bundle.sh: one renkei-*.whl and
#                     requirements.txt (the locked core dependencies), optionally wheels/
#                     (build-bundle.sh --wheels; then the dependencies are installed from
#                     there only). Default: the directory of this script.
#   --config FILE     install FILE as /etc/renkei/gateway.yaml (validated first; the old
#                     one is kept as gateway.yaml.bak)
#   --env-file FILE   install FILE as /etc/renkei/gateway.env (RENKEI_MQTT_PASSWORD=...)
#   --ca FILE         install FILE as /etc/renkei/tls/ca.crt (the broker's CA)
#   --installer X     uv | pip | auto (default: uv if on PATH, else pip)
#   --python PY       interpreter for the virtualenv (default python3)
#   --offline         no network: the dependencies come from the bundle's wheels/ only
#                     (refused when the bundle has none)
#   --reinstall       rebuild the current release's virtualenv
#   --no-compile      do not compile bytecode at install time (faster install, slower
#                     first start: the service cannot write bytecode below /opt)
#   --rollback        switch back to the previous release
#   --no-start        do not enable/start/restart the service
#   --no-verify       skip the post-install checks
#   --root DIR        install below DIR instead of / (tests, image staging); implies
#                     --no-system. The virtualenv then contains DIR in its paths.
#   --no-system       no user/group, no chown, no systemctl (not root, or --root)
#
# Layout:
#   /opt/renkei/releases/<version>-<hash>/  one virtualenv per release (core dependencies
#                                           only: no cloud/models extras)
#   /opt/renkei/venv -> releases/...        the current release; previous -> the one before
#   /opt/renkei/bin/renkei-gateway          the agent's command line (renkei.edge.cli)
#   /opt/renkei/models -> venv/.../renkei/models/artifacts  models shipped with the release
#   /etc/renkei/ (0750 root:renkei)         gateway.yaml, gateway.env, tls/ (files 0640)
#   /var/lib/renkei/ (0750 renkei:renkei)   outbox and deployed models
#   /etc/systemd/system/renkei-gateway.service
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
unit_name=renkei-gateway.service

root=""
bundle=""
config=""
env_file=""
ca=""
installer=auto
python=python3
offline=0
reinstall=0
rollback=0
start=1
verify=1
compile=1
system=""

log() { echo "renkei-install: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}
usage() { sed -n '2,40p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --bundle) bundle=$2; shift 2 ;;
        --config) config=$2; shift 2 ;;
        --env-file) env_file=$2; shift 2 ;;
        --ca) ca=$2; shift 2 ;;
        --installer) installer=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        --offline) offline=1; shift ;;
        --reinstall) reinstall=1; shift ;;
        --no-compile) compile=0; shift ;;
        --rollback) rollback=1; shift ;;
        --no-start) start=0; shift ;;
        --no-verify) verify=0; shift ;;
        --root) root=$2; shift 2 ;;
        --no-system) system=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

if [ "$rollback" = 0 ]; then
    bundle=${bundle:-$here}
    if [ "$offline" = 1 ] && [ ! -d "$bundle/wheels" ]; then
        die "--offline needs the dependencies' wheels in $bundle/wheels (build-bundle.sh --wheels)"
    fi
fi

if [ -n "$root" ]; then
    mkdir -p "$root"
    root=$(cd "$root" && pwd)
    [ "$root" = / ] && root=""
fi
if [ -z "$system" ]; then
    if [ -n "$root" ]; then system=0; else system=1; fi
fi
if [ "$system" = 1 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (sudo), or use --root DIR / --no-system"
fi

prefix="$root/opt/renkei"
etc="$root/etc/renkei"
state="$root/var/lib/renkei"
unit_dir="$root/etc/systemd/system"
changed=0 # whether the running service must be restarted

mkdir -p "$prefix/releases" "$prefix/bin"
chmod 0755 "$prefix" "$prefix/releases" "$prefix/bin"
if command -v flock >/dev/null; then
    exec 9>"$prefix/.install.lock"
    flock -w 120 9 || die "another install.sh is running"
fi

# ----------------------------------------------------------------- user and directories

if [ "$system" = 1 ]; then
    getent group renkei >/dev/null || groupadd --system renkei
    if ! getent passwd renkei >/dev/null; then
        useradd --system --gid renkei --home-dir /var/lib/renkei --no-create-home \
            --shell /usr/sbin/nologin --comment "Renkei gateway agent" renkei
        log "created system user renkei"
    fi
fi
install -d -m 0750 "$etc" "$etc/tls" "$state"
if [ "$system" = 1 ]; then
    chown root:renkei "$etc" "$etc/tls"
    chown renkei:renkei "$state"
fi

# install_file MODE SRC DEST: copy unless DEST already has that content (idempotent:
# an unchanged file keeps its timestamp); returns 0 if DEST was written.
install_file() {
    if cmp -s "$2" "$3"; then
        chmod "$1" "$3"
        return 1
    fi
    install -m "$1" "$2" "$3.new"
    mv -f "$3.new" "$3"
}

# install_private SRC DEST: a file under /etc/renkei, 0640 root:renkei; sets changed=1
# when its content changed.
install_private() {
    if install_file 0640 "$1" "$2"; then changed=1; fi
    if [ "$system" = 1 ]; then chown root:renkei "$2"; fi
}

# ----------------------------------------------------------------- the release

switch_to() { # switch_to RELEASE_DIR_NAME: atomically repoint venv (and previous)
    local target="releases/$1" current
    current=$(readlink "$prefix/venv" 2>/dev/null || true)
    [ "$current" = "$target" ] && return 0
    if [ -n "$current" ]; then
        ln -sfn "$current" "$prefix/previous.new"
        mv -T "$prefix/previous.new" "$prefix/previous"
    fi
    ln -sfn "$target" "$prefix/venv.new"
    mv -T "$prefix/venv.new" "$prefix/venv"
    changed=1
    log "current release: $1${current:+ (previous: ${current#releases/})}"
}

prune_releases() { # keep only the current and the previous release
    local keep1 keep2 dir
    keep1=$(readlink "$prefix/venv" 2>/dev/null || true)
    keep2=$(readlink "$prefix/previous" 2>/dev/null || true)
    for dir in "$prefix"/releases/*; do
        [ -d "$dir" ] || continue
        case "releases/${dir##*/}" in
            "$keep1" | "$keep2") ;;
            *) rm -rf "$dir"; log "removed old release ${dir##*/}" ;;
        esac
    done
}

build_release() { # build_release DIR WHEEL REQUIREMENTS
    local dir=$1 wheel=$2 req=$3 use=$installer
    local -a index=()
    if [ -d "$bundle/wheels" ]; then index=(--no-index --find-links "$bundle/wheels"); fi
    if [ "$use" = auto ]; then
        if command -v uv >/dev/null; then use=uv; else use=pip; fi
    fi
    rm -rf "$dir"
    case $use in
        uv)
            local -a uvopts=(--quiet) compile_opt=()
            if [ "$offline" = 1 ]; then uvopts+=(--offline); fi
            if [ "$compile" = 1 ]; then compile_opt=(--compile-bytecode); fi
            UV_PYTHON_DOWNLOADS=never uv venv "${uvopts[@]}" --python "$python" "$dir"
            # The requirements are the complete locked set: no resolution, no extras.
            # Bytecode is compiled now: the service cannot write below /opt.
            uv pip install "${uvopts[@]}" --python "$dir/bin/python" --no-deps "${index[@]}" \
                "${compile_opt[@]}" -r "$req" "$wheel"
            uv pip check --quiet --python "$dir/bin/python"
            ;;
        pip)
            "$python" -c 'import ensurepip' 2>/dev/null \
                || die "$python cannot create virtualenvs: apt-get install python3-venv"
            local -a compile_opt=()
            if [ "$compile" = 0 ]; then compile_opt=(--no-compile); fi
            "$python" -m venv "$dir"
            "$dir/bin/python" -m pip install --quiet --disable-pip-version-check \
                --no-deps "${index[@]}" "${compile_opt[@]}" -r "$req" "$wheel"
            "$dir/bin/python" -m pip check --disable-pip-version-check >/dev/null
            ;;
        *) die "unknown installer $use (uv, pip or auto)" ;;
    esac
    "$dir/bin/python" -c 'import renkei.edge.agent, renkei.edge.cli, renkei.edge.watchdog' \
        || die "the new virtualenv cannot import the gateway agent"
}

if [ "$rollback" = 1 ]; then
    previous=$(readlink "$prefix/previous" 2>/dev/null || true)
    if [ -z "$previous" ] || [ ! -f "$prefix/$previous/.complete" ]; then
        die "no previous release to roll back to"
    fi
    switch_to "${previous#releases/}"
else
    shopt -s nullglob
    wheels=("$bundle"/renkei-*.whl)
    shopt -u nullglob
    [ ${#wheels[@]} -eq 1 ] || die "expected one renkei-*.whl in $bundle (build-bundle.sh)"
    wheel=${wheels[0]}
    req="$bundle/requirements.txt"
    [ -f "$req" ] || die "no requirements.txt in $bundle (build-bundle.sh)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$python is older than Python 3.11"
    version=$(basename "$wheel" | cut -d- -f2)
    pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    digest=$(cat "$wheel" "$req" <(echo "$pyver") | sha256sum | cut -c1-12)
    release="$version-$digest"
    if [ "$reinstall" = 1 ] || [ ! -f "$prefix/releases/$release/.complete" ]; then
        log "building release $release ($(basename "$wheel"), Python $pyver)"
        build_release "$prefix/releases/$release" "$wheel" "$req"
        printf 'version=%s\nwheel=%s\npython=%s\ninstalled=%s\n' "$version" \
            "$(basename "$wheel")" "$pyver" "$(date -u +%FT%TZ)" \
            >"$prefix/releases/$release/.complete"
        changed=1
    else
        log "release $release is already installed"
    fi
    switch_to "$release"
fi
prune_releases

# The shipped models of the current release, at a path that survives upgrades.
models=$(cd "$prefix/venv" && find lib -maxdepth 5 -path 'lib/python3*/site-packages/renkei/models/artifacts' | head -n1)
[ -n "$models" ] || die "the release has no models/artifacts"
if [ "$(readlink "$prefix/models" 2>/dev/null || true)" != "venv/$models" ]; then
    ln -sfn "venv/$models" "$prefix/models.new"
    mv -T "$prefix/models.new" "$prefix/models"
fi

# The agent's command line: renkei.edge.cli of the current release only (the full `renkei`
# command also loads the cloud commands, whose dependencies a gateway does not have).
launcher=$(mktemp)
cat >"$launcher" <<EOF
#!/bin/sh
# Renkei gateway agent command line (written by install.sh): renkei.edge.cli of the release
# that $prefix/venv points to.
exec $prefix/venv/bin/python -P -c 'from renkei.edge.cli import app; app(prog_name="renkei-gateway")' "\$@"
EOF
install_file 0755 "$launcher" "$prefix/bin/renkei-gateway" || true
rm -f "$launcher"
install_file 0755 "$here/uninstall.sh" "$prefix/uninstall.sh" || true
install_file 0644 "$here/README.md" "$prefix/README.md" || true

# ----------------------------------------------------------------- configuration

restart_before=$changed
install_private "$here/gateway.yaml.example" "$etc/gateway.yaml.example"
changed=$restart_before # (the example is not read by the service)
if [ -n "$config" ]; then
    "$prefix/venv/bin/python" -c '
import sys
from renkei.edge.config import ConfigError, load_config
try:
    load_config(sys.argv[1])
except ConfigError as exc:
    sys.exit(str(exc))
' "$config" || die "$config is not a valid gateway config; nothing changed in $etc"
    if [ -f "$etc/gateway.yaml" ] && ! cmp -s "$config" "$etc/gateway.yaml"; then
        install_private "$etc/gateway.yaml" "$etc/gateway.yaml.bak"
    fi
    install_private "$config" "$etc/gateway.yaml"
fi
if [ -n "$env_file" ]; then
    install_private "$env_file" "$etc/gateway.env"
elif [ ! -f "$etc/gateway.env" ]; then
    tmp_env=$(mktemp)
    printf '%s\n' "# Secrets of the Renkei gateway agent (systemd EnvironmentFile)." \
        "# The MQTT password, named by mqtt.password_env in gateway.yaml:" \
        "#RENKEI_MQTT_PASSWORD=" >"$tmp_env"
    install_private "$tmp_env" "$etc/gateway.env"
    rm -f "$tmp_env"
fi
if [ -n "$ca" ]; then
    install_private "$ca" "$etc/tls/ca.crt"
fi

# ----------------------------------------------------------------- systemd unit

mkdir -p "$unit_dir"
if install_file 0644 "$here/$unit_name" "$unit_dir/$unit_name"; then changed=1; fi

if [ "$verify" = 1 ]; then
    "$prefix/bin/renkei-gateway" --help >/dev/null || die "renkei-gateway --help failed"
    if ! "$prefix/venv/bin/renkei" edge --help >/dev/null 2>&1; then
        log "warning: \`renkei edge --help\` fails in this release (the full renkei command" \
            "needs the cloud dependencies); the service uses renkei-gateway, which works"
    fi
fi

if [ "$system" = 1 ]; then
    systemctl daemon-reload
    if [ "$start" = 1 ] && [ -f "$etc/gateway.yaml" ]; then
        systemctl enable --quiet "$unit_name"
        if [ "$changed" = 1 ]; then
            systemctl restart "$unit_name"
            log "started $unit_name (journalctl -u $unit_name -f)"
        else
            systemctl start "$unit_name"
        fi
    elif [ ! -f "$etc/gateway.yaml" ]; then
        log "next: write $etc/gateway.yaml (see gateway.yaml.example), put the MQTT password"
        log "into $etc/gateway.env and the broker CA into $etc/tls/ca.crt, then:"
        log "    systemctl enable --now $unit_name"
    fi
fi
log "done: $(readlink "$prefix/venv")"
