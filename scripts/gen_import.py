#!/usr/bin/env python3
"""Writes N canonical events for `surety import` to stdout: offline sales of the last 60 days.

    scripts/gen_import.py 1000000 > /tmp/sales.csv
    scripts/gen_import.py 1000000 --format ndjson > /tmp/sales.ndjson
    scripts/gen_import.py 1000 --bad 100 > /tmp/some-bad.csv     # every 100th row invalid

Every row has a hashed-at-ingest email and one item; every second row a phone and a GA4 client
id. Event ids are derived (order:N:KIND), so the same N always makes the same events. Pure
Python, no dependencies.
"""

import argparse
import csv
import datetime
import json
import sys

COLUMNS = [
    "kind", "occurred_at", "subject.type", "subject.id", "value", "currency", "identity.email",
    "identity.phone", "identity.client_id", "consent.analytics", "consent.ad_user_data",
    "attributes.channel", "items",
]


def rows(n, bad, kind):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for i in range(1, n + 1):
        at = now - datetime.timedelta(seconds=(i * 5183) % (60 * 86400) + 60)
        price = 5 + (i * 37) % 200 + (i % 100) / 100
        quantity = 1 + i % 3
        row = {
            "kind": kind,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "subject.type": "order",
            "subject.id": f"S-{i:08d}",
            "value": f"{price * quantity:.2f}",
            "currency": "EUR",
            "identity.email": f"customer{i % 50000}@example.com",
            "identity.phone": f"+49 151 {i % 10000000:07d}" if i % 2 == 0 else "",
            "identity.client_id": f"{1000000 + i % 90000}.1700000000" if i % 2 == 0 else "",
            "consent.analytics": "granted",
            "consent.ad_user_data": "granted" if i % 4 else "denied",
            "attributes.channel": "store" if i % 3 else "phone",
            "items": json.dumps([{"id": f"SKU-{i % 500}", "price": price, "quantity": quantity}],
                                separators=(",", ":")),
        }
        if bad and i % bad == 0:
            row["occurred_at"] = "not a time"
        yield row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("n", type=int, help="how many rows")
    p.add_argument("--format", choices=["csv", "ndjson"], default="csv")
    p.add_argument("--bad", type=int, default=0, help="make every BAD-th row invalid (0: none)")
    p.add_argument("--kind", default="offline_sale")
    args = p.parse_args()
    out = sys.stdout
    if args.format == "csv":
        w = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows(args.n, args.bad, args.kind))
        return
    for row in rows(args.n, args.bad, args.kind):
        event = {}
        for key, value in row.items():
            if value == "":
                continue
            if key == "value":
                value = float(value)
            elif key == "items":
                value = json.loads(value)
            *parents, last = key.split(".")
            target = event
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = value
        out.write(json.dumps(event, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
