#!/usr/bin/env python3
"""Sends a small e-commerce story to a Segment-compatible endpoint with a real Python SDK.

    python send_python.py <segment|rudder> <base_url> <write_key> <run_id>

segment = segment-analytics-python (module segment.analytics), rudder = rudder-sdk-python
(module rudderstack.analytics); versions pinned in requirements.txt. Both SDKs POST the batch to
<base_url>/v1/batch (the path is fixed in both SDKs).

Sends, in this order, through the SDK's normal queue (one consumer thread):
  identify  userId u-<run_id>, traits {email: Buyer.<run_id>@Example.com, phone}
  track     "Order Completed" {order_id o-<run_id>, total/revenue 129.90, currency EUR, products[2]}
            context {ip, userAgent, traits.email}, timestamp two hours ago
  track     "Order Refunded" {order_id o-<run_id>, total 29.90, currency EUR}
each with an explicit messageId (py-<sdk>-<run_id>-<n>), then flushes and shuts the client down
synchronously. Prints one JSON object on stdout:
  {"sdk", "sdk_version", "user_id", "order_id", "order_completed_timestamp",
   "message_ids": {"identify", "order_completed", "order_refunded"}, "errors": [...]}
and exits 0 only if the SDK reported no error (its on_error callback was never called).

Environment (optional):
  SURETY_SDK_RETRIES  SDK max_retries (default 3; the SDKs' own default is 10, which can take
                      minutes against a dead endpoint)
  SURETY_SDK_GZIP     1/0 to force the SDK's gzip option (segment default off, rudder default on)
  SURETY_SDK_TIMEOUT  per-request timeout in seconds (default 15)
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone


def main(argv):
    if len(argv) != 5 or argv[1] not in ("segment", "rudder"):
        print(__doc__, file=sys.stderr)
        return 2
    sdk, base_url, write_key, run_id = argv[1:]
    retries = int(os.environ.get("SURETY_SDK_RETRIES", "3"))
    timeout = float(os.environ.get("SURETY_SDK_TIMEOUT", "15"))
    gzip_env = os.environ.get("SURETY_SDK_GZIP")

    errors = []

    def on_error(e, batch):
        errors.append({"error": str(e), "status": getattr(e, "status", None), "events": len(batch)})

    kwargs = dict(host=base_url, on_error=on_error, max_retries=retries, timeout=timeout)
    if gzip_env is not None:
        kwargs["gzip"] = gzip_env == "1"
    if sdk == "segment":
        from segment.analytics import Client
        from segment.analytics.version import VERSION
    else:
        from rudderstack.analytics import Client
        from rudderstack.analytics.version import VERSION
    client = Client(write_key, **kwargs)

    user_id = f"u-{run_id}"
    order_id = f"o-{run_id}"
    email = f"Buyer.{run_id}@Example.com"
    ids = {
        "identify": f"py-{sdk}-{run_id}-1",
        "order_completed": f"py-{sdk}-{run_id}-2",
        "order_refunded": f"py-{sdk}-{run_id}-3",
    }
    completed_at = (datetime.now(timezone.utc) - timedelta(hours=2)).replace(microsecond=0)

    results = []
    results.append(
        client.identify(
            user_id=user_id,
            traits={"email": email, "phone": "+49 151 2345 6789"},
            message_id=ids["identify"],
        )
    )
    results.append(
        client.track(
            user_id=user_id,
            event="Order Completed",
            properties={
                "order_id": order_id,
                "total": 129.90,
                "revenue": 129.90,
                "currency": "EUR",
                "products": [
                    {"product_id": "sku-trail-42", "name": "Trail Runner", "price": 99.90, "quantity": 1},
                    {"product_id": "sku-sock-m", "name": "Merino Socks", "price": 15.00, "quantity": 2},
                ],
            },
            context={
                "ip": "203.0.113.9",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
                "traits": {"email": email},
            },
            timestamp=completed_at,
            message_id=ids["order_completed"],
        )
    )
    results.append(
        client.track(
            user_id=user_id,
            event="Order Refunded",
            properties={"order_id": order_id, "total": 29.90, "currency": "EUR"},
            message_id=ids["order_refunded"],
        )
    )
    for ok, msg in results:
        if not ok:
            errors.append({"error": "queue full", "messageId": msg.get("messageId")})

    client.flush()
    client.shutdown()

    print(
        json.dumps(
            {
                "sdk": {"segment": "segment-analytics-python", "rudder": "rudder-sdk-python"}[sdk],
                "sdk_version": VERSION,
                "user_id": user_id,
                "order_id": order_id,
                "order_completed_timestamp": completed_at.isoformat(),
                "message_ids": ids,
                "errors": errors,
            }
        )
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
