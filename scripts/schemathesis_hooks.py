"""Schemathesis hooks for scripts/schemathesis.sh: sign what is sent, so generated requests get
past the webhooks' signature checks and the Segment write-key check into the parsers (the admin
token is given to Schemathesis itself with -H, so its authentication checks know it).

JSON bodies are serialised here (one fixed encoding), so the signature covers exactly the bytes
that go on the wire. Secrets come from the same variables the server's configuration reads.
"""

import base64
import hashlib
import hmac
import json
import os
import time

import schemathesis

STRIPE = os.environ["SURETY_ST_STRIPE_SECRET"].encode()
SHOPIFY = os.environ["SURETY_ST_SHOPIFY_SECRET"].encode()
SEGMENT = os.environ["SURETY_ST_SEGMENT_KEY"]
SEGMENT_PATHS = {"/v1/batch", "/v1/track", "/v1/identify"}


def body_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b"null"
    return json.dumps(value, default=str, separators=(",", ":")).encode()


@schemathesis.serializer("application/json")
def json_body(ctx, value):
    return body_bytes(value)


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if path in SEGMENT_PATHS:
        # `Authorization` carries the admin token (-H); the write key goes where SDKs also put it.
        if isinstance(case.body, dict):
            case.body.setdefault("writeKey", SEGMENT)
        return
    if not path.startswith("/v1/webhooks/"):
        return
    headers = dict(case.headers or {})
    # No body at all (a negative case may drop it): nothing is sent, so an empty one is signed.
    body = b"" if type(case.body).__name__ == "NotSet" else body_bytes(case.body)
    if path == "/v1/webhooks/stripe":
        t = str(int(time.time()))
        sig = hmac.new(STRIPE, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers["Stripe-Signature"] = f"t={t},v1={sig}"
    elif path == "/v1/webhooks/shopify":
        sig = hmac.new(SHOPIFY, body, hashlib.sha256).digest()
        headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(sig).decode()
        headers.setdefault("X-Shopify-Topic", "orders/paid")
    case.headers = headers
