#!/usr/bin/env python3
"""Generates a busy shop's month for measuring `surety reconcile` at scale: a ledger of N events
(written straight into a migrated SQLite ledger), the source export (N rows) and a GA4 purchase
export (N rows), with a few differences of each kind.

    mkdir -p DIR && cat > DIR/surety.toml <<TOML
    [storage]
    url = "sqlite://DIR/surety.db"
    [[destinations]]
    name = "ga4-web"
    type = "ga4"
    measurement_id = "G-SCALE1"
    api_secret = "env:SCALE_GA4_SECRET"
    [catalog.order_paid]
    ga4-web = { event = "purchase" }
    TOML
    export SCALE_GA4_SECRET=scale-secret-0123456789   # read, never used: nothing is sent
    surety migrate -c DIR/surety.toml                 # creates DIR/surety.db first
    scripts/reconcile_scale.py DIR 1000000
    /usr/bin/time -v surety reconcile -c DIR/surety.toml --source DIR/source.csv \
        --platform ga4-web=DIR/ga4.csv --json > DIR/report.json
"""

import json
import random
import sqlite3
import sys
from datetime import datetime, timedelta, timezone

out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
start = datetime(2026, 10, 1, tzinfo=timezone.utc)
span = 30 * 24 * 3600
us = lambda t: int(t.timestamp() * 1_000_000)
iso = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")

db = sqlite3.connect(f"{out}/surety.db")
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
src = open(f"{out}/source.csv", "w")
src.write("subject.type,subject.id,kind,occurred_at,value,currency\n")
ga4 = open(f"{out}/ga4.csv", "w")
ga4.write("# GA4 exploration export\nTransaction ID,Date,Event name,Purchase revenue,Event count\n")
events, deliveries = [], []


def flush():
    db.executemany(
        "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, "
        "content_hash, routed, body) VALUES (?,?,?,?,?,?,?,?,1,?)", events)
    db.executemany(
        "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, "
        "reason, created_at, updated_at) VALUES (?,?,?,0,0,?,?,?,?)", deliveries)
    events.clear()
    deliveries.clear()


for i in range(n):
    oid = str(100000000 + i)
    at = start + timedelta(seconds=rng.randrange(span))
    value = round(rng.uniform(5, 500), 2)
    eid = f"order:{oid}:order_paid"
    body = {"event_id": eid, "kind": "order_paid", "source": "shopify", "occurred_at": iso(at),
            "received_at": iso(at + timedelta(seconds=2)), "subject": {"type": "order", "id": oid},
            "value": value, "currency": "EUR", "identity": {"client_id": f"555.{i}"},
            "consent": {"analytics": "granted"}}
    lost = i % 100_000 == 1
    if not lost:
        events.append((eid, "order_paid", "shopify", "order", oid, us(at), us(at) + 2_000_000, "x", json.dumps(body)))
        state, reason = ("skipped", "consent_denied") if i % 50 == 0 else ("delivered", "sent")
        deliveries.append((eid, "ga4-web", "purchase", state, reason, us(at), us(at)))
    src_value = value + 10 if i % 100_000 == 2 else value
    src.write(f"order,{oid},order_paid,{iso(at)},{src_value:.2f},EUR\n")
    if not lost and i % 50 != 0 and i % 100_000 != 3:
        day = (at + timedelta(days=1 if i % 100_000 == 4 else 0)).strftime("%Y%m%d")
        count = 2 if i % 100_000 == 5 else 1
        ga4.write(f"{oid},{day},purchase,{value:.2f},{count}\n")
    if len(events) >= 10_000:
        flush()
flush()
db.commit()
for j in range(max(1, n // 100_000)):
    ga4.write(f"B-{j},20261015,purchase,42.00,1\n")
src.close()
ga4.close()
