#!/usr/bin/env bash
# Surety measured from outside, as an operator would: separately started `surety serve` processes
# (auth on, a GA4 destination routed) driven by wrk with one new event per request, and in the same
# run the same web stack with nothing behind it (examples/bare_axum.rs), driven the same way;
# prints both and their ratio, Surety's peak memory, and whether every event reached the platform
# exactly once.
#
#   scripts/bench_http.sh [SECONDS] [CONNECTIONS]      (defaults: 20 s, 64 connections)
#
#   LEDGER=postgres://root@127.0.0.1:5432/test scripts/bench_http.sh    a PostgreSQL ledger: a fresh
#       database is made in that server for the run and dropped afterwards (default: SQLite with
#       synchronous = full, in a temporary folder)
#   PROCESSES=2 LEDGER=postgres://… scripts/bench_http.sh               two `surety serve` processes
#       on the one PostgreSQL ledger, each driven by its own wrk with half the connections; their
#       rates add up, the p99 is the worse of the two
#
# Everything listens on 127.0.0.1 only and stops when the script ends. wrk comes from Debian's
# package (installed here if missing). The "platform" the events are delivered to is a second
# bare_axum answering 2xx to everything and counting the transaction ids it receives
# (`--count`), so delivery runs during the measurement as in production, and after the
# measurement the script waits for the queue to drain and checks that the platform received every
# stored event once.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
connections="${2:-64}"
processes="${PROCESSES:-1}"
ledger="${LEDGER:-}"
if [ "$processes" -gt 1 ] && [ -z "$ledger" ]; then
    echo "bench_http: PROCESSES=$processes needs LEDGER=postgres://… (SQLite serves one process)" >&2
    exit 2
fi

if ! command -v wrk >/dev/null; then
    (apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq wrk >/dev/null 2>&1; }) ||
        { echo "bench_http: wrk is needed (Debian package 'wrk'); install it and run again" >&2; exit 1; }
fi
# PROFILE=dev runs the debug build (to try the script, not to measure).
profile="${PROFILE:-release}"
dir="$([ "$profile" = dev ] && echo debug || echo "$profile")"
echo "== building ($profile): surety and examples/bare_axum"
cargo build --profile "$profile" --quiet --bin surety --example bare_axum
surety="$PWD/target/$dir/surety"
bare="$PWD/target/$dir/examples/bare_axum"

work="$(mktemp -d)"
pids=()
database=""
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$database" ]; then psql "$ledger" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "bench_http: $1 did not answer" >&2; exit 1
}

if [ -n "$ledger" ]; then
    database="surety_bench_http_$$"
    psql "$ledger" -qc "CREATE DATABASE $database" >/dev/null
    url="${ledger%/*}/$database"
    store="PostgreSQL ($url)"
else
    url="sqlite://$work/ledger.db"
    store="SQLite, synchronous = full"
fi

yard_port="$(free_port)"; platform_port="$(free_port)"
"$bare" "127.0.0.1:$yard_port" 2>/dev/null & pids+=($!)
"$bare" "127.0.0.1:$platform_port" --count 2>/dev/null & pids+=($!)

export SURETY_BENCH_TOKEN="bench-ingest-token-0123456789"
export SURETY_BENCH_ADMIN="bench-admin-token-0123456789"
export SURETY_BENCH_GA4_SECRET="bench-ga4-secret-0123456789"
ports=()
surety_pids=()
for i in $(seq 1 "$processes"); do
    port="$(free_port)"
    ports+=("$port")
    cat >"$work/surety-$i.toml" <<TOML
[storage]
url = "$url"

[server]
listen = "127.0.0.1:$port"

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
    "$surety" serve --config "$work/surety-$i.toml" 2>"$work/surety-$i.log" &
    pids+=($!)
    surety_pids+=($!)
    wait_for "http://127.0.0.1:$port/readyz"
done
wait_for "http://127.0.0.1:$yard_port/"

# NAME CONNECTIONS URL...: one wrk per URL at once, CONNECTIONS shared; prints one RESULT line
# per URL, as NAME.
run() {
    local name="$1" conns="$2"
    shift 2
    local each=$((conns / $#)) outs=() i=0
    for u in "$@"; do
        i=$((i + 1))
        # The Lua script numbers orders by run and thread: each process's wrk gets its own run.
        BENCH_RUN="$i$$" wrk -t2 -c"$each" -d"${seconds}s" --latency -s scripts/bench_http.lua "$u" >"$work/wrk-$name-$i.out" 2>&1 &
        outs+=($!)
    done
    for p in "${outs[@]}"; do wait "$p"; done
    for j in $(seq 1 $#); do grep '^RESULT' "$work/wrk-$name-$j.out" | sed "s/^RESULT/$name/"; done
}
surety_urls=()
for p in "${ports[@]}"; do surety_urls+=("http://127.0.0.1:$p"); done

echo "== warm-up (3 s each)"
for u in "${surety_urls[@]}"; do
    wrk -t2 -c"$connections" -d3s -s scripts/bench_http.lua "$u" >/dev/null 2>&1 || true
done
wrk -t2 -c"$connections" -d3s -s scripts/bench_http.lua "http://127.0.0.1:$yard_port" >/dev/null 2>&1 || true

echo "== $seconds s each, $connections connections, one new event per request, $processes surety process(es), $store ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
s_lines="$(run surety "$connections" "${surety_urls[@]}")"
b_line="$(run bare_axum "$connections" "http://127.0.0.1:$yard_port")"
echo "$s_lines"
echo "$b_line"
rss_kib="$(for p in "${surety_pids[@]}"; do awk '/VmHWM/ {print $2}' "/proc/$p/status"; done | sort -n | tail -1)"
python3 - "$b_line" "$rss_kib" "$s_lines" <<'PY'
import re, sys
field = lambda line, k: float(re.search(rf"\b{k}=([0-9.]+)", line).group(1))
b, rss, lines = sys.argv[1], float(sys.argv[2]), sys.argv[3].splitlines()
s_rps = sum(field(l, "rps") for l in lines)
p99 = max(field(l, "p99_ms") for l in lines)
print(f"surety total: {s_rps:.0f} requests/s, p99 {p99:.2f} ms (worst process)")
print(f"ratio surety/bare_axum = {s_rps / field(b, 'rps'):.2f}   surety peak RSS = {rss / 1024:.0f} MiB (largest process)")
PY

# Did what was acknowledged go out, once? Delivery runs on until the queue is empty.
echo "== draining the queue, then checking the platform got every stored event once"
sql() { if [ -n "$ledger" ]; then psql "$url" -qtAc "$1"; else sqlite3 "$work/ledger.db" "$1"; fi; }
drain_start="$(date +%s)"
while [ "$(sql "SELECT count(*) FROM deliveries WHERE state IN ('pending', 'claimed', 'sending')")" != 0 ]; do
    if [ $(($(date +%s) - drain_start)) -gt 600 ]; then echo "bench_http: the queue did not drain in 600 s" >&2; break; fi
    sleep 1
done
echo "queue drained $(($(date +%s) - drain_start)) s after the load ended"
curl -fsS "http://127.0.0.1:$platform_port/count" | python3 -c 'import json, sys; c = json.load(sys.stdin); print(c["distinct"], c["duplicates"], c["requests"])' >"$work/platform"
read -r distinct duplicates requests <"$work/platform"
counts="$(sql "SELECT (SELECT count(*) FROM events) || '|' || (SELECT count(*) FROM deliveries WHERE state = 'delivered')")"
IFS='|' read -r stored delivered <<<"$counts"
echo "ledger: $stored events stored, $delivered deliveries delivered; platform: $distinct distinct events, $duplicates duplicates, in $requests requests"
if [ "$duplicates" != 0 ] || [ "$distinct" != "$stored" ] || [ "$delivered" != "$stored" ]; then
    echo "bench_http: not every stored event reached the platform exactly once; deliveries by state:" >&2
    sql "SELECT state || ' ' || coalesce(reason, '') || ': ' || count(*) FROM deliveries GROUP BY state, reason" >&2
    exit 1
fi
echo "exactly once: every stored event reached the platform once"
for i in $(seq 1 "$processes"); do
    if grep -qi 'panicked' "$work/surety-$i.log"; then echo "bench_http: surety $i logged a panic" >&2; exit 1; fi
done
