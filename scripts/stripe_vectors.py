#!/usr/bin/env python3
"""Writes tests/vectors/stripe/signatures.json: Stripe-Signature cases whose expectations come
from Stripe's official Python library alone, never from Surety's code.

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r scripts/stripe_vectors.requirements.txt
    /tmp/venv/bin/python scripts/stripe_vectors.py        # from the repository root

Generated with stripe 16.1.0 (requirements line: stripe==16.1.0). The script refuses another
version unless STRIPE_VECTORS_ANY_VERSION=1 is set, since the library's rules may change.

Each case is {name, secret, body, header, now, tolerance, expect[, note, quirk, library_message]}:
  body     the exact raw body (UTF-8): the real event objects of shared/fixtures/stripe/*.json,
           verbatim, plus small synthetic ones
  header   the Stripe-Signature value (null = header absent)
  now      unix seconds the verifier must take as the current time
  expect   "valid" or the reason: bad_signature, stale_timestamp, missing_header,
           malformed_header, no_v1
  quirk    true where the verdict is a peculiarity of this library that a verifier may
           deliberately not share (stricter time window, whitespace, check order, empty header,
           items without "="); the verdict is still exactly the library's
Valid headers are made by `stripe.WebhookSignature.generate_signature_header` (the library's
test helper); every case is then run through `stripe.Webhook.construct_event` with the clock
pinned to `now` (the library reads time.time()), and the library's verdict must equal `expect`:
the script aborts otherwise. The library's error message is recorded as `library_message`.

Library behaviour worth knowing (stripe-python 16.1.0, stripe/_webhook.py):
  - order of checks: header present, secret present, header parses (`t` must exist and be an
    integer), at least one `v1`, some `v1` equals the expected hex (string comparison, so
    upper-case hex fails), then age: rejected only when t < now - tolerance.
  - a timestamp in the future is never rejected, however far ahead: it only bounds the age.
  - signature before age: a stale timestamp with a wrong signature is reported as a bad signature.
  - the header is split on "," and each item on "="; keys are compared verbatim, so " v1" (space
    after the comma) is not a v1 entry.
  - a tolerance of 0 (or None) switches the age check off entirely (`if tolerance and ...`);
    construct_event's default is 300. No vector uses that: Surety should not copy it.
"""

import json
import os
import sys
from importlib import metadata
from unittest import mock

import stripe
from stripe import Webhook, WebhookSignature

PINNED = "16.1.0"
TOLERANCE = 300
SECRET = "whsec_surety_test_5f2d8c1e9a7b4c3d2e1f0a9b8c7d6e5f"
SECRET_OLD = "whsec_surety_test_rotated_old_0a1b2c3d4e5f6a7b8c9d"
SECRET_WRONG = "whsec_surety_test_wrong_ffffffffffffffffffffffffffff"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# shared/ sits beside the repository; STRIPE_FIXTURES overrides.
FIXTURES = os.environ.get(
    "STRIPE_FIXTURES", os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "stripe")
)


def library_verdict(body, header, secret, now, tolerance):
    """Runs the library's own verification with the clock at `now`; returns (verdict, message)."""
    with mock.patch("stripe._webhook.time.time", return_value=float(now)):
        try:
            event = Webhook.construct_event(body, header, secret, tolerance)
        except stripe.SignatureVerificationError as e:
            msg = str(e.user_message if hasattr(e, "user_message") and e.user_message else e)
            return classify(msg), msg
        # construct_event also parsed the body; make sure it really is the event we signed.
        assert event["id"] == json.loads(body)["id"]
        # verify_header alone must agree.
        assert WebhookSignature.verify_header(body, header, secret, tolerance) is True
        return "valid", None


def classify(msg):
    if msg.startswith("No Stripe-Signature header value was provided"):
        return "missing_header"
    if msg.startswith("Unable to extract timestamp and signatures from header"):
        return "malformed_header"
    if msg.startswith("No signatures found with expected scheme"):
        return "no_v1"
    if msg.startswith("No signatures found matching the expected signature"):
        return "bad_signature"
    if msg.startswith("Timestamp outside the tolerance zone"):
        return "stale_timestamp"
    sys.exit(f"unknown library message: {msg!r}")


def sign(body, secret, t):
    return WebhookSignature.generate_signature_header(body, secret, timestamp=t)


def v1_of(header):
    return [p.split("=", 1)[1] for p in header.split(",") if p.startswith("v1=")][0]


def reserialise(body):
    """Same JSON value, different bytes: compact separators and sorted keys."""
    return json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def synthetic(evt_id, typ, created, obj):
    return json.dumps(
        {
            "id": evt_id,
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": created,
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": typ,
        },
        indent=2,
        ensure_ascii=False,
    )


def main():
    version = metadata.version("stripe")
    if version != PINNED and os.environ.get("STRIPE_VECTORS_ANY_VERSION") != "1":
        sys.exit(f"stripe {version} installed; these vectors are pinned to stripe=={PINNED}")

    cases = []

    def case(name, secret, body, header, now, expect, note=None, tolerance=TOLERANCE, quirk=False):
        verdict, msg = library_verdict(body, header, secret, now, tolerance)
        if verdict != expect:
            sys.exit(f"{name}: expected {expect}, the library says {verdict} ({msg})")
        c = {
            "name": name,
            "secret": secret,
            "body": body,
            "header": header,
            "now": now,
            "tolerance": tolerance,
            "expect": expect,
        }
        if note:
            c["note"] = note
        if quirk:
            c["quirk"] = True
        if msg:
            c["library_message"] = msg
        cases.append(c)

    # Real event objects, verbatim bytes.
    real = {}
    for fname in sorted(os.listdir(FIXTURES)):
        if fname.endswith(".json"):
            with open(os.path.join(FIXTURES, fname), "rb") as f:
                raw = f.read().decode("utf-8")
            real[fname[: -len(".json")]] = raw
    if not real:
        sys.exit(f"no fixtures in {FIXTURES}")

    for stem, body in real.items():
        t = json.loads(body)["created"] + 2  # Stripe signs when it delivers, just after created
        h = sign(body, SECRET, t)
        case(f"valid_{stem}", SECRET, body, h, t + 1, "valid")

    # Synthetic bodies: checkout.session.completed with metadata, non-ASCII text.
    checkout = synthetic(
        "evt_1SynthCheckout0001",
        "checkout.session.completed",
        1714600000,
        {
            "id": "cs_test_a1SynthCheckout0001",
            "object": "checkout.session",
            "amount_total": 12990,
            "currency": "eur",
            "customer_details": {"email": "käufer@example.com", "name": "Zoë Ünal"},
            "metadata": {"client_id": "1234567890.1714590000", "session_id": "1714599000"},
            "payment_intent": "pi_3SynthCheckout0001",
            "payment_status": "paid",
            "status": "complete",
        },
    )
    tiny = '{"id":"evt_tiny","object":"event","type":"invoice.paid","created":1714700000,"data":{"object":{}}}'
    trailing_nl = synthetic(
        "evt_1SynthNewline0001",
        "charge.refunded",
        1714700100,
        {"id": "ch_1SynthNewline0001", "object": "charge", "amount_refunded": 500, "description": "émoji 🎉 refund"},
    ) + "\n"

    t = 1714600005
    case("valid_checkout_session_non_ascii", SECRET, checkout, sign(checkout, SECRET, t), t, "valid")
    case("valid_compact_body", SECRET, tiny, sign(tiny, SECRET, 1714700002), 1714700010, "valid")
    case("valid_body_trailing_newline", SECRET, trailing_nl, sign(trailing_nl, SECRET, 1714700101), 1714700101, "valid",
         note="the trailing newline is part of the signed bytes")

    pi = real.get("payment_intent_succeeded") or next(iter(real.values()))
    t0 = json.loads(pi)["created"] + 2
    good = sign(pi, SECRET, t0)

    # Secret rotation: two v1 entries, the first signed with the old secret, the second with ours.
    old_sig = v1_of(sign(pi, SECRET_OLD, t0))
    new_sig = v1_of(good)
    case("valid_two_v1_second_matches", SECRET, pi, f"t={t0},v1={old_sig},v1={new_sig}", t0 + 1, "valid",
         note="secret rotation: only the second v1 matches")
    case("valid_two_v1_first_matches", SECRET, pi, f"t={t0},v1={new_sig},v1={old_sig}", t0 + 1, "valid")
    case("valid_with_v0_and_v1", SECRET, pi, f"{good},v0={'0' * 64}", t0 + 1, "valid",
         note="test-mode deliveries also carry a v0 entry; it is ignored")
    case("valid_v1_before_t", SECRET, pi, f"v1={new_sig},t={t0}", t0 + 1, "valid",
         note="entry order does not matter")

    # Tampered / re-serialised / wrong secret.
    tampered = pi.replace('"amount": 2550', '"amount": 2551', 1)
    assert tampered != pi
    case("tampered_body", SECRET, tampered, good, t0 + 1, "bad_signature")
    case("wrong_secret", SECRET_WRONG, pi, good, t0 + 1, "bad_signature")
    case("reserialised_json", SECRET, reserialise(pi), good, t0 + 1, "bad_signature",
         note="same JSON value, compact and key-sorted: the signature covers the raw bytes")
    case("two_v1_none_matches", SECRET, pi, f"t={t0},v1={old_sig},v1={'ab' * 32}", t0 + 1, "bad_signature")
    case("v1_uppercase_hex", SECRET, pi, f"t={t0},v1={new_sig.upper()}", t0 + 1, "bad_signature",
         note="library quirk: the hex is compared as a string, so upper case does not match")
    case("timestamp_changed", SECRET, pi, f"t={t0 + 1},v1={new_sig}", t0 + 1, "bad_signature",
         note="the timestamp is part of the signed payload")

    # Time.
    case("age_exactly_tolerance", SECRET, pi, good, t0 + TOLERANCE, "valid",
         note="rejected only when t < now - tolerance")
    case("stale_timestamp", SECRET, pi, good, t0 + TOLERANCE + 1, "stale_timestamp")
    case("stale_timestamp_one_day", SECRET, pi, good, t0 + 86400, "stale_timestamp")
    future = t0 + 3600
    case("future_timestamp_beyond_tolerance", SECRET, pi, sign(pi, SECRET, future), t0, "valid",
         note="stripe-python accepts timestamps in the future, however far ahead (t = now + 3600 here): "
              "it only rejects t < now - tolerance. A stricter verifier would reject this.", quirk=True)
    case("stale_and_wrong_signature", SECRET, tampered, good, t0 + 86400, "bad_signature",
         note="the library checks the signature before the age", quirk=True)

    # Header problems.
    case("missing_header", SECRET, pi, None, t0 + 1, "missing_header")
    case("empty_header", SECRET, pi, "", t0 + 1, "missing_header",
         note="the library treats an empty value like an absent header", quirk=True)
    case("malformed_header_garbage", SECRET, pi, "garbage", t0 + 1, "malformed_header")
    case("malformed_header_no_t", SECRET, pi, f"v1={new_sig}", t0 + 1, "malformed_header")
    case("malformed_header_t_not_integer", SECRET, pi, f"t=yesterday,v1={new_sig}", t0 + 1, "malformed_header")
    case("only_v0_scheme", SECRET, pi, f"t={t0},v0={new_sig}", t0 + 1, "no_v1",
         note="the v0 entry carries the right HMAC but only v1 counts")
    case("only_t", SECRET, pi, f"t={t0}", t0 + 1, "no_v1")
    case("space_after_comma", SECRET, pi, f"t={t0}, v1={new_sig}", t0 + 1, "no_v1",
         note="library quirk: keys are not trimmed, so ' v1' is not v1", quirk=True)
    case("item_without_equals_ignored", SECRET, pi, f"{good},junk", t0 + 1, "valid",
         note="library quirk: an item without '=' is ignored, not a parse error", quirk=True)

    out = os.path.join(ROOT, "tests", "vectors", "stripe", "signatures.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.relpath(out, ROOT)} (stripe {version})")


if __name__ == "__main__":
    main()
