#!/usr/bin/env bash
# Write a .env for docker-compose.yml from .env.example with strong random secrets.
#
#   deploy/compose/make-env.sh [--out FILE] [--force]
#
# Every empty *_PASSWORD / *_TOKEN of .env.example gets 40 random characters from
# [A-Za-z0-9] (/dev/urandom); every other line is copied as it is. The file is created
# with mode 0600. An existing file is kept unless --force is given (replacing secrets of a
# running stack locks services out of InfluxDB, whose v1 users are made on first start).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
example="$repo/.env.example"
out="$repo/.env"
force=0

while [ $# -gt 0 ]; do
    case $1 in
        --out) out=$2; shift 2 ;;
        --force) force=1; shift ;;
        -h | --help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "make-env: unknown argument $1" >&2; exit 2 ;;
    esac
done

if [ -e "$out" ] && [ "$force" -ne 1 ]; then
    echo "make-env: $out exists; not overwriting it (use --force)" >&2
    exit 1
fi

random_secret() {
    # 40 characters of [A-Za-z0-9]: about 238 bits.
    (set +o pipefail; LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)
}

tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
chmod 600 "$tmp"
generated=0
while IFS= read -r line || [ -n "$line" ]; do
    case $line in
        *_PASSWORD= | *_TOKEN=)
            printf '%s%s\n' "$line" "$(random_secret)" >>"$tmp"
            generated=$((generated + 1))
            ;;
        *) printf '%s\n' "$line" >>"$tmp" ;;
    esac
done <"$example"
mv "$tmp" "$out"
trap - EXIT
echo "make-env: wrote $out ($generated random secrets, mode 0600)" >&2
