#!/usr/bin/env bash
# Reading pace of the workstation: a scripted reader reads 21 full-size phantom cases (1024 px)
# in Chromium, looking 1 s at each, and the time from one case on the screen to the next is
# measured over 20 cases (scripts/reading_pace.py); the admin export must hold all 21 reads.
#   bench/reading_pace.sh [BIN_DIR]   (default target/debug; BIN_DIR holds hipfrac)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug}"
work="$(mktemp -d)"
trap 'kill "${server:-}" 2>/dev/null || true; cat "$work/server.log" >&2; rm -rf "$work"' EXIT
"$bin/hipfrac" phantom --count 21 --size 1024 --seed 7 --out "$work/cases" >/dev/null
hash="$(echo alice-password | "$bin/hipfrac" study hash-password)"
cat >"$work/study.toml" <<TOML
name = "Pace"
cases = "cases/manifest.csv"
database = "db/study.sqlite"
seed = 1
phases = [{ name = "I" }]
[[readers]]
name = "alice"
password_hash = "$hash"
[[admins]]
name = "admin"
password_hash = "$hash"
TOML
port=$((20000 + RANDOM % 20000))
"$bin/hipfrac" study serve --study "$work/study.toml" --addr "127.0.0.1:$port" 2>"$work/server.log" &
server=$!
up=""
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && { up=1; break; }; sleep 0.2; done
[ -n "$up" ] || { echo "error: the study server did not start" >&2; exit 1; }
echo "reading pace, $(date -u +%F) on $(nproc) cores ($(uname -m)), hipfrac from $bin"
python3 scripts/reading_pace.py "http://127.0.0.1:$port" chromium 21 1.0
