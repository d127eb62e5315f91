"""Schemathesis hooks for scripts/schemathesis.sh: sign what is sent, so generated requests get
past the webhooks' signature checks and the Segment write-key check into the parsers (the admin
token is given to Schemathesis itself with -H, so its authentication checks know it).

JSON bodies are serialised here (one fixed encoding), so the signature covers exactly the bytes
that go on the wire. Secrets come from the same variables the server's configuration reads.

Besides, the few rules JSON Schema cannot state are kept true for generated valid requests (a time
not in the future, a reconcile window that is not empty, the destinations that exist), each
below with why; SECURITY.md lists them.
"""

import base64
import datetime
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


def integral(value):
    """JSON Schema counts 1.0 as an integer and Schemathesis may generate it for an `integer`; Surety's
    integer fields (ids, quantities, amounts in minor units) take JSON integers, as every source
    sends them. So an integral float goes on the wire as the integer it equals: the same JSON
    Schema value, the form the parsers read."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def body_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if value is None:
        return b"null"
    return json.dumps(integral(value), default=str, separators=(",", ":")).encode()


def when(value, end):
    """A reconcile bound as the server reads it: a date (its start, or for `until` the next day) or a time."""
    try:
        if len(value) == 10:
            d = datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.timezone.utc)
            return d + datetime.timedelta(days=1) if end else d
        return datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except (ValueError, TypeError):
        return None


def open_window(body):
    """The window must not be empty (`until` after `since`; without bounds it is the days the source's
    rows cover, or up to now), a rule between fields and the clock that JSON Schema cannot state. A
    window that would be empty starts in 2000 instead (both bounds stay valid); the rest is left alone."""
    if not isinstance(body, dict):
        return
    since = when(body["since"], False) if isinstance(body.get("since"), str) else None
    until = when(body["until"], True) if isinstance(body.get("until"), str) else None
    if body.get("since") is not None and since is None or body.get("until") is not None and until is None:
        return  # not a date or a time: for the server to refuse
    now = datetime.datetime.now(datetime.timezone.utc)
    if since is None or since.tzinfo is None or (until or now) <= since:
        body["since"] = "2000-01-01"
        if until is not None and until <= datetime.datetime(2000, 1, 2, tzinfo=datetime.timezone.utc):
            body["until"] = None


def not_in_future(obj, key):
    """A time at most 5 minutes ahead of the server's clock cannot be said in JSON Schema: a generated
    `date-time` later than now is moved an hour into the past (a valid time stays a valid time)."""
    if not isinstance(obj, dict) or not isinstance(obj.get(key), str):
        return
    try:
        t = datetime.datetime.fromisoformat(obj[key].replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return
    if t.tzinfo is not None and t > datetime.datetime.now(datetime.timezone.utc):
        past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        obj[key] = past.strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.serializer("application/json")
def json_body(ctx, value):
    return body_bytes(value)


def drops(case, header):
    """Whether this case tests what happens without `header` (then it is not added)."""
    data = getattr(getattr(getattr(case, "meta", None), "phase", None), "data", None)
    scenario = getattr(getattr(data, "scenario", None), "name", "")
    return scenario == "MISSING_PARAMETER" and str(getattr(data, "parameter", "")).lower() == header.lower()


def negative_body(case):
    """Whether this case's body was generated to break the schema."""
    for location, component in (getattr(getattr(case, "meta", None), "components", None) or {}).items():
        if getattr(location, "name", "") == "BODY" and component.mode.is_negative:
            return True
    return False


def configured_platforms(body):
    """Which destinations exist, and which of them can be read back, is the deployment's
    configuration (as which delivery ids exist is its data): a reconcile names those
    scripts/schemathesis.sh configures — a report file for `ga4-web`, `api` for `gads` (Google Ads,
    read back from the ledger's follow-up results)."""
    if isinstance(body, dict) and isinstance(body.get("platforms"), dict) and body["platforms"]:
        value = next(iter(body["platforms"].values()))
        body["platforms"] = {"gads" if value == "api" else "ga4-web": value}


@schemathesis.hook
def before_call(context, case, kwargs):
    path = case.operation.path
    if path == "/v1/events" and isinstance(case.body, dict):
        for event in case.body.get("events") if isinstance(case.body.get("events"), list) else [case.body]:
            not_in_future(event, "occurred_at")
    if path == "/v1/identities":
        not_in_future(case.body, "captured_at")
    if path == "/v1/reconcile":
        open_window(case.body)
        configured_platforms(case.body)
        if (case.media_type or "").startswith("multipart/") and isinstance(case.body, dict):
            # A form has no null: a bound the window rule took out is a part left out.
            for key in [k for k, v in case.body.items() if v is None]:
                del case.body[key]
    if path in SEGMENT_PATHS:
        # `Authorization` carries the admin token (-H); the write key goes where SDKs also put it.
        if isinstance(case.body, dict):
            case.body.setdefault("writeKey", SEGMENT)
            for message in case.body.get("batch") if isinstance(case.body.get("batch"), list) else [case.body]:
                not_in_future(message, "timestamp")
        return
    if not path.startswith("/v1/webhooks/"):
        return
    headers = dict(case.headers or {})
    if isinstance(case.body, dict):
        not_in_future(case.body, "processed_at")
        if isinstance(case.body.get("created"), (int, float)) and case.body["created"] > time.time():
            case.body["created"] = int(time.time()) - 3600
    # Serialised after the changes above, so the signature covers exactly what is sent. No body at
    # all (a negative case may drop it): nothing is sent, so an empty one is signed.
    body = b"" if type(case.body).__name__ == "NotSet" else body_bytes(case.body)
    if path == "/v1/webhooks/stripe" and not drops(case, "Stripe-Signature"):
        t = str(int(time.time()))
        sig = hmac.new(STRIPE, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers["Stripe-Signature"] = f"t={t},v1={sig}"
    elif path == "/v1/webhooks/shopify" and not drops(case, "X-Shopify-Hmac-Sha256"):
        sig = hmac.new(SHOPIFY, body, hashlib.sha256).digest()
        headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(sig).decode()
    if path == "/v1/webhooks/shopify" and negative_body(case) and not drops(case, "X-Shopify-Topic"):
        # The body schema is the orders topics'; a topic without a kind is answered 200 `ignored`
        # without its body being read. A body made to break the schema goes to a topic that reads it.
        headers["X-Shopify-Topic"] = "orders/paid"
    case.headers = headers
