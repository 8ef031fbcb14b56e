#!/usr/bin/env bash
# Build the gateway install bundle on a workstation (with uv and this repository).
#
#   deploy/pi/build-bundle.sh [--out DIR]        (default: dist/renkei-gateway)
#
# The bundle holds everything install.sh needs on the Pi: the renkei wheel, the exact
# core dependencies locked in uv.lock (requirements.txt: no dev group, no extras, so no
# cloud or model-training packages), install.sh, uninstall.sh, the systemd unit, the
# example config and the README. Copy it to the Pi and run `sudo ./install.sh` in it.
# For a Pi without internet access, add the arm64 wheels (deploy/pi/README.md, "Offline").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/dist/renkei-gateway"

while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        -h | --help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-bundle: unknown argument $1" >&2; exit 2 ;;
    esac
done

mkdir -p "$out"
rm -f "$out"/renkei-*.whl
(cd "$repo" && uv build --quiet --wheel --out-dir "$out")
(cd "$repo" && uv export --quiet --frozen --no-dev --no-emit-project --no-hashes \
    --output-file "$out/requirements.txt")
for f in install.sh uninstall.sh renkei-gateway.service gateway.yaml.example README.md; do
    install -m "$([ "${f##*.}" = sh ] && echo 0755 || echo 0644)" "$here/$f" "$out/$f"
done
echo "build-bundle: $out ($(basename "$out"/renkei-*.whl), $(grep -c '==' "$out/requirements.txt") pinned dependencies)" >&2
