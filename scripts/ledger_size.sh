#!/usr/bin/env bash
# What the SQLite ledger costs on disk per event: a separately started `surety serve` (auth on, a
# GA4 destination routed to a stand-in platform answering 2xx) takes N realistic events (email,
# phone, client id, consent, two items) in batches of 500, delivers each once, and is stopped; the
# ledger is checkpointed and vacuumed, and its size is printed in total and per table and index
# (SQLite's dbstat), per event. Each event here has one delivery, one attempt and a share of one
# request (GA4 batches up to 25 events of one client; here every event has its own client).
#
#   scripts/ledger_size.sh [N]          (default 20000; release build, PROFILE=dev for the debug one)
#
# KEEP=1 keeps the ledger (its path is printed). Everything listens on 127.0.0.1 only and stops when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"

# Sizes do not depend on the build; PROFILE=dev measures with the debug build.
profile="${PROFILE:-release}"
dir="$([ "$profile" = dev ] && echo debug || echo "$profile")"
echo "== building ($profile): surety and examples/bare_axum"
cargo build --profile "$profile" --quiet --bin surety --example bare_axum
surety="$PWD/target/$dir/surety"
bare="$PWD/target/$dir/examples/bare_axum"

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then echo "ledger kept: $work/ledger.db"; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # URL
    for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "ledger_size: $1 did not answer" >&2; exit 1
}

platform_port="$(free_port)"; surety_port="$(free_port)"
"$bare" "127.0.0.1:$platform_port" 2>/dev/null & pids+=($!)
export SURETY_SIZE_TOKEN="size-ingest-token-0123456789"
export SURETY_SIZE_ADMIN="size-admin-token-0123456789"
export SURETY_SIZE_GA4_SECRET="size-ga4-secret-0123456789"
cat >"$work/surety.toml" <<TOML
[storage]
url = "sqlite://$work/ledger.db"

[server]
listen = "127.0.0.1:$surety_port"

[auth]
ingest_tokens = ["env:SURETY_SIZE_TOKEN"]
admin_tokens = ["env:SURETY_SIZE_ADMIN"]

[log]
level = "warn"

[[destinations]]
name = "ga4-web"
type = "ga4"
measurement_id = "G-SIZE1"
api_secret = "env:SURETY_SIZE_GA4_SECRET"
base_url = "http://127.0.0.1:$platform_port"

[catalog.order_paid]
ga4-web = { event = "purchase" }
TOML
"$surety" serve --config "$work/surety.toml" 2>"$work/surety.log" & surety_pid=$!
pids+=("$surety_pid")
wait_for "http://127.0.0.1:$surety_port/readyz"
wait_for "http://127.0.0.1:$platform_port/"

echo "== posting $n events"
python3 - "$n" "http://127.0.0.1:$surety_port" "$SURETY_SIZE_TOKEN" "$SURETY_SIZE_ADMIN" <<'PY'
import json, sys, time, urllib.request
from datetime import datetime, timedelta, timezone
n, base, token, admin = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
at = (datetime.now(timezone.utc) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
def event(i):
    return {"kind": "order_paid", "occurred_at": at, "subject": {"type": "order", "id": f"{100000 + i}"},
            "value": round(19.9 + i % 300, 2), "currency": "EUR",
            "identity": {"client_id": f"{1000000 + i}.{1700000000 + i}", "email": f"buyer.{i}@example.com",
                         "phone": f"+49 151 {10000000 + i}"},
            "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "granted"},
            "items": [{"id": f"SKU-{i % 97}", "name": "Linen shirt", "price": 39.9, "quantity": 1},
                      {"id": f"SKU-{i % 89}", "name": "Socks", "price": 9.9, "quantity": 2}]}
def call(method, path, body=None, auth=token):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + auth})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")
for start in range(0, n, 500):
    call("POST", "/v1/events", {"events": [event(i) for i in range(start, min(n, start + 500))]})
for _ in range(600):
    if not any(call("GET", f"/v1/deliveries?state={s}&limit=1", auth=admin) for s in ("pending", "claimed", "sending")):
        break
    time.sleep(0.5)
PY
sleep 2
kill -TERM "$surety_pid"; wait "$surety_pid" 2>/dev/null || true
sqlite3 "$work/ledger.db" 'PRAGMA wal_checkpoint(TRUNCATE); VACUUM;' >/dev/null
echo "== the ledger after $n events, vacuumed ($(date -u +%Y-%m-%dT%H:%MZ))"
sqlite3 "$work/ledger.db" "SELECT 'delivered: ' || count(*) FROM deliveries WHERE state = 'delivered';"
python3 - "$work/ledger.db" "$n" <<'PY'
import os, sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
total = os.path.getsize(path)
print(f"file: {total:,} bytes = {total / n:.0f} bytes per event")
rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
for name, size in rows:
    if size / n >= 1:
        print(f"  {name:<32} {size / n:7.0f} bytes per event")
PY
