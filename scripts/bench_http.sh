#!/usr/bin/env bash
# Surety measured from outside, as an operator would: a separately started `surety serve` (auth on,
# a GA4 destination routed, SQLite with synchronous = full) driven by wrk with one new event per
# request, and in the same run the same web stack with nothing behind it (examples/bare_axum.rs),
# driven the same way; prints both and their ratio, and Surety's peak memory.
#
#   scripts/bench_http.sh [SECONDS] [CONNECTIONS]      (defaults: 20 s, 64 connections)
#
# Everything listens on 127.0.0.1 only and stops when the script ends. wrk comes from Debian's
# package (installed here if missing). The "platform" the events are delivered to is a second
# bare_axum answering 2xx to everything, so delivery runs during the measurement as in production.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
connections="${2:-64}"

if ! command -v wrk >/dev/null; then
    (apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; }) ||
        { echo "bench_http: wrk is needed (Debian package 'wrk'); install it and run again" >&2; exit 1; }
fi
echo "== building (release): surety and examples/bare_axum"
cargo build --release --quiet --bin surety --example bare_axum
surety="$PWD/target/release/surety"
bare="$PWD/target/release/examples/bare_axum"

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench_http: $1 did not answer" >&2; exit 1
}

yard_port="$(free_port)"; platform_port="$(free_port)"; surety_port="$(free_port)"
"$bare" "127.0.0.1:$yard_port" 2>/dev/null & pids+=($!)
"$bare" "127.0.0.1:$platform_port" 2>/dev/null & pids+=($!)

export SURETY_BENCH_TOKEN="bench-ingest-token-0123456789"
export SURETY_BENCH_ADMIN="bench-admin-token-0123456789"
export SURETY_BENCH_GA4_SECRET="bench-ga4-secret-0123456789"
cat >"$work/surety.toml" <<TOML
[storage]
url = "sqlite://$work/ledger.db"

[server]
listen = "127.0.0.1:$surety_port"

[auth]
ingest_tokens = ["env:SURETY_BENCH_TOKEN"]
admin_tokens = ["env:SURETY_BENCH_ADMIN"]

[log]
level = "warn"

[[destinations]]
name = "ga4-web"
type = "ga4"
measurement_id = "G-BENCH1"
api_secret = "env:SURETY_BENCH_GA4_SECRET"
base_url = "http://127.0.0.1:$platform_port"

[catalog.order_paid]
ga4-web = { event = "purchase" }
TOML
"$surety" serve --config "$work/surety.toml" 2>"$work/surety.log" & surety_pid=$!
pids+=("$surety_pid")
wait_for "http://127.0.0.1:$surety_port/readyz"
wait_for "http://127.0.0.1:$yard_port/"

run() { # NAME URL
    wrk -t2 -c"$connections" -d"${seconds}s" --latency -s scripts/bench_http.lua "$2" 2>&1 | grep '^RESULT' | sed "s/^RESULT/$1/"
}
echo "== warm-up (3 s each)"
wrk -t2 -c"$connections" -d3s -s scripts/bench_http.lua "http://127.0.0.1:$surety_port" >/dev/null 2>&1 || true
wrk -t2 -c"$connections" -d3s -s scripts/bench_http.lua "http://127.0.0.1:$yard_port" >/dev/null 2>&1 || true

echo "== $seconds s each, $connections connections, one new event per request ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
s_line="$(run surety "http://127.0.0.1:$surety_port")"
b_line="$(run bare_axum "http://127.0.0.1:$yard_port")"
echo "$s_line"
echo "$b_line"
rss_kib="$(awk '/VmHWM/ {print $2}' "/proc/$surety_pid/status")"
s_rps="$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$s_line")"
b_rps="$(sed -E 's/.* rps=([0-9]+).*/\1/' <<<"$b_line")"
python3 - "$s_rps" "$b_rps" "$rss_kib" <<'PY'
import sys
s, b, rss = (float(x) for x in sys.argv[1:4])
print(f"ratio surety/bare_axum = {s / b:.2f}   surety peak RSS = {rss / 1024:.0f} MiB")
PY
# Did what was acknowledged also go out? (delivery runs on while we count)
sleep 3
curl -fsS "http://127.0.0.1:$surety_port/metrics" | grep -E '^surety_(queue_depth|deliveries_total)\{' | sed 's/^/  /' || true
if grep -qi 'panicked' "$work/surety.log"; then echo "bench_http: surety logged a panic" >&2; exit 1; fi
