#!/usr/bin/env bash
# The test suite on any machine: `scripts/test.sh [ARGS...]` runs `cargo test ARGS...` after
# making sure what the suite needs is there, and says in one line what to install when it is not.
#
# - PostgreSQL: the server `SURETY_TEST_PG` names (default postgres://root@127.0.0.1:5432/test,
#   trust auth) when it answers. When it does not, a throwaway cluster is made from the system's
#   PostgreSQL binaries (`initdb` and `pg_ctl` from `pg_config --bindir` or
#   /usr/lib/postgresql/*/bin) in a temporary folder, on a free port of 127.0.0.1, with trust
#   auth; the tests use it, and it is stopped and deleted when they end. As root, the cluster runs
#   as the `postgres` user (PostgreSQL refuses to run as root). `SURETY_TEST_PG=throwaway` makes
#   one even where a server answers.
# - With no arguments, after `cargo test` the integration tests run again on PostgreSQL ledgers
#   (`SURETY_IT_LEDGER=postgres cargo test --test it`).
# - Chromium for the headless-browser tests: installed with scripts/install_chromium.sh when missing.
# - promtool (optional: the metrics lint says it skipped without it) and the SDKs (the SDK test
#   installs them itself from PyPI and npm) need nothing here.
set -euo pipefail
cd "$(dirname "$0")/.."

# SURETY_TEST_PG=throwaway skips the server and always makes a throwaway cluster.
throwaway=""
if [ "${SURETY_TEST_PG:-}" = throwaway ]; then
    throwaway=1
    unset SURETY_TEST_PG
fi
admin="${SURETY_TEST_PG:-postgres://root@127.0.0.1:5432/test}"
cluster=""

pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    local dir
    dir="$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)"
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "test.sh: no free port found on 127.0.0.1" >&2
    exit 1
}

stop_cluster() {
    [ -n "$cluster" ] || return 0
    as_owner "$bindir/pg_ctl" -D "$cluster/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$cluster"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

bindir="$(pg_bindir || true)"
psql_bin="$(command -v psql || { [ -n "$bindir" ] && echo "$bindir/psql"; } || true)"
if [ -z "$throwaway" ] && [ -n "$psql_bin" ] && "$psql_bin" "$admin" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    echo "test.sh: PostgreSQL at ${admin%%\?*}"
elif [ -n "${SURETY_TEST_PG:-}" ]; then
    echo "test.sh: SURETY_TEST_PG=$SURETY_TEST_PG does not answer; start that server or unset SURETY_TEST_PG for a throwaway cluster" >&2
    exit 1
elif [ -z "$bindir" ]; then
    echo "test.sh: no PostgreSQL answers at $admin and no PostgreSQL binaries (initdb, pg_ctl) are installed." >&2
    echo "test.sh: install them (Debian: apt-get install postgresql) or set SURETY_TEST_PG=postgres://user@host:port/db" >&2
    exit 1
else
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        echo "test.sh: running as root, and PostgreSQL will not: create a 'postgres' user or run as another user" >&2
        exit 1
    fi
    cluster="$(mktemp -d /tmp/surety-test-pg.XXXXXX)"
    trap stop_cluster EXIT
    [ "$(id -u)" = 0 ] && chown postgres "$cluster"
    port="$(free_port)"
    user="$(sed -E 's#^postgres(ql)?://([^:@/]+).*#\2#' <<<"$admin")"
    echo "test.sh: no PostgreSQL at $admin: a throwaway cluster in $cluster on 127.0.0.1:$port ($bindir)"
    as_owner "$bindir/initdb" -D "$cluster/data" -U "$user" -A trust -E UTF8 --no-sync >"$cluster/initdb.log" 2>&1 ||
        { cat "$cluster/initdb.log" >&2; echo "test.sh: initdb failed" >&2; exit 1; }
    as_owner "$bindir/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w \
        -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
        { cat "$cluster/server.log" >&2; echo "test.sh: the throwaway PostgreSQL did not start" >&2; exit 1; }
    "$bindir/psql" "postgres://$user@127.0.0.1:$port/postgres" -qc 'CREATE DATABASE test' >/dev/null
    export SURETY_TEST_PG="postgres://$user@127.0.0.1:$port/test"
fi

if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "test.sh: Chromium is missing: installing it (scripts/install_chromium.sh)"
    bash scripts/install_chromium.sh >/dev/null ||
        { echo "test.sh: could not install Chromium: install Debian's 'chromium' package (the browser tests need it)" >&2; exit 1; }
fi

rc=0
cargo test "$@" || rc=$?
# With no arguments (the whole suite), the in-process integration tests run once more with every
# server on a fresh PostgreSQL ledger (SURETY_IT_LEDGER=postgres; about 80 s on two cores): the
# shared ledger keeps every promise the embedded one does.
if [ "$#" -eq 0 ]; then
    echo "test.sh: the integration tests again on PostgreSQL ledgers (SURETY_IT_LEDGER=postgres cargo test --test it)"
    SURETY_IT_LEDGER=postgres cargo test --test it || rc=$?
fi
exit "$rc"
