#!/usr/bin/env bash
# Installs the tracking SDKs that the integration tests run against Surety (tests/sdk/):
#   DIR/venv                 Python venv with tests/sdk/requirements.txt
#   DIR/node/node_modules    tests/sdk/package.json installed with tests/sdk/package-lock.json
#                            (optional dependencies omitted: rudder-sdk-node's Redis queue, bull)
# Usage: scripts/install_sdks.sh DIR        (the Rust tests call it with target/sdk)
# Then:  DIR/venv/bin/python tests/sdk/send_python.py <segment|rudder> <base_url> <write_key> <run_id>
#        SURETY_SDK_DIR=DIR node tests/sdk/send_node.mjs <segment|rudder> <base_url> <write_key> <run_id>
#
# Idempotent and quiet: prints nothing and exits 0 when everything is installed. A marker file
# DIR/.installed holds a hash of the requirement files and the interpreter versions; when it
# matches, nothing is run. Concurrent callers serialise on DIR/.lock (flock). On failure, exits
# non-zero with the reason and the installer's output on stderr.
set -euo pipefail

die() { echo "install_sdks.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 DIR"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sdk_src="$(cd "$here/../tests/sdk" && pwd)" || die "tests/sdk not found next to scripts/"
mkdir -p "$1" || die "cannot create $1"
dir="$(cd "$1" && pwd)"

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "$python not found (Python 3.11 needed for the Python SDKs)"
command -v node >/dev/null || die "node not found (Node 20 needed for the Node SDKs)"
command -v npm >/dev/null || die "npm not found"

want="$(
  {
    cat "$sdk_src/requirements.txt" "$sdk_src/package.json" "$sdk_src/package-lock.json"
    "$python" -c 'import sys; print(sys.version)'
    node --version
    echo "layout 1"
  } | sha256sum | cut -d' ' -f1
)"
marker="$dir/.installed"
[ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && exit 0

exec 9>"$dir/.lock"
if command -v flock >/dev/null; then flock 9; fi
# Another caller may have finished while this one waited.
[ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && exit 0
rm -f "$marker"

log="$dir/install.log"
: >"$log"
fail() {
  echo "install_sdks.sh: $*" >&2
  echo "--- $log ---" >&2
  tail -n 60 "$log" >&2
  exit 1
}

# Python: a fresh venv each time the requirements change (no stale packages left behind).
rm -rf "$dir/venv"
"$python" -m venv "$dir/venv" >>"$log" 2>&1 || fail "python -m venv failed (is python3-venv installed?)"
"$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-input -q \
  -r "$sdk_src/requirements.txt" >>"$log" 2>&1 || fail "pip install -r tests/sdk/requirements.txt failed"
"$dir/venv/bin/python" -c 'import segment.analytics, rudderstack.analytics' >>"$log" 2>&1 ||
  fail "the Python SDKs do not import after installation"

# Node: install from the lock file, in DIR/node. Not `npm ci`: the lock lacks the entries of
# bull's native helper for other platforms (msgpackr-extract-darwin-*, win32-*), which npm ci
# insists on even with --omit=optional; `npm install` keeps every locked version and installs
# exactly the same tree without them.
rm -rf "$dir/node"
mkdir -p "$dir/node"
cp "$sdk_src/package.json" "$sdk_src/package-lock.json" "$dir/node/"
(cd "$dir/node" && npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error) >>"$log" 2>&1 ||
  fail "npm install in $dir/node failed"
(cd "$dir/node" && node -e 'require("@segment/analytics-node"); require("@rudderstack/rudder-sdk-node")') >>"$log" 2>&1 ||
  fail "the Node SDKs do not load after installation"

echo "$want" >"$marker"
