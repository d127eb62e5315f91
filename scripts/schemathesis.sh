#!/usr/bin/env bash
# Schemathesis against the OpenAPI document the server serves (GET /openapi.json), with every
# check on: no 5xx, no schema-valid request refused, no schema-breaking request accepted, every
# status, content type, header and response body as documented. The run fails on ANY failed check
# (or on Schemathesis failing to run); target/schemathesis/summary.txt lists what failed.
#
#   scripts/schemathesis.sh [SECONDS]     time budget of the run (default 120)
#
# Schemathesis is installed from PyPI into target/schemathesis-venv (kept between runs). The
# server is the real `surety serve` on SQLite in target/schemathesis/, with tokens, the three
# sources and one GA4 destination configured; scripts/schemathesis_hooks.py signs Stripe and
# Shopify bodies and sets the Segment write key, so requests get past those checks, and keeps the
# few rules JSON Schema cannot state (times not in the future, a reconcile window not empty)
# true for generated valid requests. scripts/schemathesis.toml counts 413 as a refusal.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
budget="${1:-120}"
version="4.32.5"
venv="$root/target/schemathesis-venv"
work="$root/target/schemathesis"

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    rm -rf "$venv"
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==$version"; } >"$root/target/schemathesis-install.log" 2>&1 ||
        { echo "schemathesis: installing schemathesis $version from PyPI failed (see target/schemathesis-install.log)" >&2; exit 1; }
fi

# SURETY_BIN: an already built binary (else the debug build, built here).
bin="${SURETY_BIN:-$root/target/debug/surety}"
if [ -z "${SURETY_BIN:-}" ]; then
    cargo build -q --bin surety || { echo "schemathesis: building surety failed" >&2; exit 1; }
fi

rm -rf "$work"
mkdir -p "$work"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export SURETY_ST_INGEST="st-ingest-token" SURETY_ST_ADMIN="st-admin-token" SURETY_ST_GA4="st-ga4-secret"
export SURETY_ST_STRIPE_SECRET="whsec_schemathesis" SURETY_ST_SHOPIFY_SECRET="shpss_schemathesis"
export SURETY_ST_SEGMENT_KEY="wk_schemathesis"
cat >"$work/surety.toml" <<EOF
[storage]
url = "sqlite://$work/surety.db"

[server]
listen = "127.0.0.1:$port"

[auth]
ingest_tokens = ["env:SURETY_ST_INGEST"]
admin_tokens = ["env:SURETY_ST_ADMIN"]

# A GA4 stream no one listens for: deliveries are planned, tried and retried.
[[destinations]]
name = "ga4-web"
type = "ga4"
measurement_id = "G-SCHEMA1"
api_secret = "env:SURETY_ST_GA4"
base_url = "http://127.0.0.1:9"
timeout_ms = 500

# Google Ads, unreachable too: a reconcile naming gads with "api" reads back the ledger's
# follow-up results (GA4 has no data_api table here, so only a file reconciles it).
[[destinations]]
name = "gads"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = "file:$PWD/tests/fixtures/google_ads/test_service_account.json"
base_url = "http://127.0.0.1:9"
token_url = "http://127.0.0.1:9/token"
timeout_ms = 500

[catalog.order_paid]
ga4-web = { event = "purchase" }

[catalog.refund_completed]
ga4-web = { event = "refund" }

[sources.stripe]
signing_secret = "env:SURETY_ST_STRIPE_SECRET"

[sources.shopify]
signing_secret = "env:SURETY_ST_SHOPIFY_SECRET"

[sources.segment]
write_keys = ["env:SURETY_ST_SEGMENT_KEY"]
EOF

RUST_LOG=error "$bin" serve --config "$work/surety.toml" >"$work/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/readyz" >/dev/null || { echo "schemathesis: surety did not start (see $work/server.log)" >&2; exit 1; }

# Exit status 1 means "some check failed": judged below from the report, not here.
# Schemathesis itself sometimes crashes inside its own generator when two workers parse Python
# source at once (seen: `KeyError` from linecache, "AST constructor recursion depth mismatch"). Such
# a run reports a "Runtime Error" and no failed check; it is run once more, and a second crash
# fails like a failed check does.
only_tool_errors() {
    python3 - "$work/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
failures = sum(len(c.findall("failure")) for c in root.iter("testcase"))
errors = [e for c in root.iter("testcase") for e in c.findall("error")]
sys.exit(0 if failures == 0 and errors and all("Runtime Error" in ((e.get("message") or "") + (e.text or "")) for e in errors) else 1)
PY
}
for attempt in 1 2; do
    rc=0
    # Run from $work so Schemathesis's example database (.schemathesis/) stays out of the tree.
    (cd "$work" && PYTHONPATH="$root/scripts" SCHEMATHESIS_HOOKS=schemathesis_hooks "$venv/bin/schemathesis" \
        --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
        --checks all --continue-on-failure --max-time "$budget" --workers 2 --seed 20261202 --request-timeout 10 \
        -H "Authorization: Bearer $SURETY_ST_ADMIN" \
        --report junit --report-junit-path "$work/junit.xml") >"$work/run.log" 2>&1 || rc=$?
    if [ "$attempt" -eq 1 ] && [ "$rc" -eq 1 ] && only_tool_errors; then
        grep -m3 -E "KeyError|SystemError|Error:" "$work/run.log" | cut -c1-160 >&2 || true
        echo "schemathesis: crashed inside itself (a Runtime Error, no failed check): running it once more" >&2
        continue
    fi
    break
done
kill -0 "$server" 2>/dev/null || { echo "schemathesis: the server died during the run (see $work/server.log)" >&2; exit 1; }
if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    tail -40 "$work/run.log" >&2
    echo "schemathesis: the run itself failed (exit $rc; see $work/run.log)" >&2
    exit 1
fi

python3 - "$work/junit.xml" "$work/run.log" >"$work/summary.txt" <<'EOF' || true
import re, sys, xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
failures = {}
total = 0
for case in tree.getroot().iter("testcase"):
    total += 1
    for f in list(case.findall("failure")) + list(case.findall("error")):
        text = (f.get("message") or "") + "\n" + (f.text or "")
        for title in re.findall(r"^\s*- (.+?)$", text, re.M) or [text.strip().splitlines()[0] if text.strip() else "?"]:
            failures.setdefault(title.strip(), set()).add(case.get("name"))
log = open(sys.argv[2]).read()
m = re.search(r"(\d+) generated", log)
print(f"operations: {total}; test cases generated: {m.group(1) if m else '?'}")
print(f"failed checks: {sum(len(o) for o in failures.values())}")
for title, ops in sorted(failures.items()):
    print(f"- {title}: {', '.join(sorted(ops))}")
EOF
cat "$work/summary.txt"
grep -E "(Examples|Coverage|Fuzzing|Stateful) \(in|passed|generated" "$work/run.log" | tail -12 || true
if [ "$rc" -ne 0 ]; then
    grep -E "^(_{5,}|- ST|    Invalid component|\[[0-9]{3}\]|    curl)" "$work/run.log" | cut -c1-300 | head -60 >&2
    echo "schemathesis: a check failed (details in $work/run.log)" >&2
    exit 1
fi
echo "schemathesis: every check passed"
