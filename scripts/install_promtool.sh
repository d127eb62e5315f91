#!/bin/sh
# Installs promtool (Prometheus's checker), which tests/it/metrics.rs uses to lint GET /metrics.
# Debian and Ubuntu ship it in the `prometheus` package, which also brings a Prometheus server:
# where systemd runs, that server is stopped and disabled again (the tests never need it).
# Without promtool, that test says so and skips its promtool part.
set -eu
if command -v promtool >/dev/null 2>&1; then
    echo "promtool is already installed: $(command -v promtool)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install promtool from your distribution's prometheus package" >&2
    echo "or from https://prometheus.io/download/ and put it on PATH" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v promtool
promtool --version 2>&1 | head -n 1
