#!/usr/bin/env bash
# Build the gateway install bundle on a workstation (with uv and this repository).
#
#   deploy/pi/build-bundle.sh [--out DIR] [--wheels [--platform TAG] [--python PY]]
#
#   --out DIR             the bundle directory (default: dist/renkei-gateway)
#   --wheels              also put the dependencies' wheels into DIR/wheels/ (binary only,
#                         each checked against its hash in uv.lock), so that install.sh
#                         needs no network (install.sh --offline). Downloads from PyPI.
#   --platform TAG        wheels for another machine, e.g. manylinux_2_36_aarch64 (a
#                         Raspberry Pi with Raspberry Pi OS / Debian 12, arm64); implies
#                         --wheels. Default: the machine this script runs on.
#   --python PY           the Python of the target: an interpreter here (default python3),
#                         or with --platform a version X.Y (default 3.11, Debian 12's)
#
# The bundle holds everything install.sh needs on the Pi: the renkei wheel, the exact
# core dependencies locked in uv.lock (requirements.txt: no dev group, no extras, so no
# cloud or model-training packages), install.sh, uninstall.sh, the systemd unit, the
# example config and the README, and with --wheels the wheels of those dependencies.
# Copy it to the Pi and run `sudo ./install.sh` in it (deploy/pi/README.md).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/dist/renkei-gateway"
wheels=0
platform=""
python=""

die() {
    echo "build-bundle: error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --wheels) wheels=1; shift ;;
        --platform) platform=$2; wheels=1; shift 2 ;;
        --python) python=$2; shift 2 ;;
        -h | --help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
command -v uv >/dev/null || die "uv is not on PATH (./dev sync installs it)"

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/renkei-*.whl
(cd "$repo" && uv build --quiet --wheel --out-dir "$out")
(cd "$repo" && uv export --quiet --frozen --no-dev --no-emit-project --no-hashes \
    --output-file "$out/requirements.txt")
for f in install.sh uninstall.sh renkei-gateway.service gateway.yaml.example README.md; do
    install -m "$([ "${f##*.}" = sh ] && echo 0755 || echo 0644)" "$here/$f" "$out/$f"
done

if [ "$wheels" = 1 ]; then
    # pip downloads (uv has no download command), with the hashes of uv.lock required, so
    # the wheels are exactly the locked files. Without --platform, pip runs on the target
    # interpreter and picks the wheels of its tags.
    hashed=$(mktemp)
    trap 'rm -f "$hashed"' EXIT
    (cd "$repo" && uv export --quiet --frozen --no-dev --no-emit-project \
        --output-file "$hashed")
    target=()
    if [ -n "$platform" ]; then
        # pip takes exact tags: a glibc 2.N machine also runs manylinux_2_17..2_N wheels.
        plats=("$platform")
        if [[ $platform =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
            plats=()
            for ((n = BASH_REMATCH[1]; n >= 17; n--)); do
                plats+=("manylinux_2_${n}_${BASH_REMATCH[2]}")
            done
            plats+=("manylinux2014_${BASH_REMATCH[2]}")
        fi
        for p in "${plats[@]}"; do target+=(--platform "$p"); done
        target+=(--implementation cp --python-version "${python:-3.11}")
        py=()
    else
        py=(--python "${python:-python3}")
    fi
    rm -rf "$out/wheels.new"
    uv tool run --quiet "${py[@]}" --from pip pip download --quiet \
        --disable-pip-version-check --no-deps --only-binary=:all: --require-hashes \
        "${target[@]}" --dest "$out/wheels.new" -r "$hashed" \
        || die "could not download the wheels${platform:+ for $platform}"
    rm -rf "$out/wheels"
    mv "$out/wheels.new" "$out/wheels"
else
    rm -rf "$out/wheels" # wheels of an earlier build may not match requirements.txt
fi
echo "build-bundle: $out ($(basename "$out"/renkei-*.whl), $(grep -c '==' "$out/requirements.txt") pinned dependencies$([ -d "$out/wheels" ] && echo ", $(find "$out/wheels" -name '*.whl' | wc -l) wheels in wheels/"))" >&2
