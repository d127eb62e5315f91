#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser that takes outside bytes, on stable Rust.
#
#   scripts/fuzz.sh build                    build the targets (fuzz/fuzz_targets/*.rs)
#   scripts/fuzz.sh smoke [SECONDS]          every target for SECONDS (default 20) each: CI
#   scripts/fuzz.sh long [RUNS] [TARGET...]  every (or each named) target for RUNS inputs
#                                            (default 10000000); figures in target/fuzz/report.txt;
#                                            FUZZ_MAX_SECONDS=N also stops each target after N s
#   scripts/fuzz.sh run TARGET [ARGS...]     one target with libFuzzer's own flags
#
# libFuzzer comes from the libfuzzer-sys crate (built from source with the C++ compiler); the
# SanitizerCoverage instrumentation is switched on with stable rustc flags, so no nightly and
# no cargo-fuzz are needed (with a nightly, `cd fuzz && cargo fuzz run TARGET` works as well).
# Inputs start from the committed seeds in fuzz/corpus/TARGET; what the fuzzer learns goes to
# target/fuzz/corpus/TARGET, never into the repository. A crash fails the script and leaves the
# input in target/fuzz/artifacts/TARGET/ (replay: scripts/fuzz.sh run TARGET FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="$root/target/fuzz"
export CARGO_TARGET_DIR="$out/build"
# An explicit --target keeps the instrumentation out of build scripts and proc macros.
host="$(rustc -vV | sed -n 's/^host: //p')"
targets=(canonical_event identity_capture stripe_webhook shopify_webhook segment_request segment_gzip import_csv import_ndjson config)

build() {
    command -v c++ >/dev/null || {
        echo "fuzz: a C++ compiler (c++) is needed to build libFuzzer (libfuzzer-sys): install one, e.g. apt-get install g++" >&2
        exit 1
    }
    local flags=(
        -Cpasses=sancov-module
        -Cllvm-args=-sanitizer-coverage-level=4
        -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
        -Cllvm-args=-sanitizer-coverage-pc-table
        -Cllvm-args=-sanitizer-coverage-trace-compares
        --cfg fuzzing
        -Cdebug-assertions
        -Coverflow-checks
    )
    RUSTFLAGS="${flags[*]}" cargo build --manifest-path fuzz/Cargo.toml --release --bins --target "$host" ||
        { echo "fuzz: building the fuzz targets failed" >&2; exit 1; }
}

bin() { echo "$CARGO_TARGET_DIR/$host/release/$1"; }

# run_one TARGET LIBFUZZER_ARGS...: fuzzes from the seeds, appends the figures to the report.
run_one() {
    local t="$1"
    shift
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t" "$out/logs"
    local log="$out/logs/$t.log"
    local start=$SECONDS rc=0
    "$(bin "$t")" "$out/corpus/$t" "fuzz/corpus/$t" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$t/" "$@" >"$log" 2>&1 || rc=$?
    local runs speed corpus
    runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)"
    speed="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -1)"
    corpus="$(find "$out/corpus/$t" "fuzz/corpus/$t" -type f | wc -l)"
    local line
    line="$(printf '%-17s %12s inputs in %5ss (%s/s), corpus %s, exit %s' "$t" "${runs:-?}" "$((SECONDS - start))" \
        "${speed:-?}" "$corpus" "$rc")"
    echo "$line" | tee -a "$out/report.txt"
    if [ "$rc" -ne 0 ]; then
        echo "fuzz: $t failed; the input is in $out/artifacts/$t/, the log in $log:" >&2
        grep -A30 -E "panicked|ERROR: libFuzzer|deadly signal|timeout" "$log" | head -60 >&2 || tail -40 "$log" >&2
        return 1
    fi
}

cmd="${1:-smoke}"
shift || true
case "$cmd" in
    build) build ;;
    smoke)
        seconds="${1:-20}"
        build
        echo "== $(date -u +%FT%TZ) smoke: ${seconds}s per target" >>"$out/report.txt"
        failed=0
        for t in "${targets[@]}"; do run_one "$t" -max_total_time="$seconds" || failed=1; done
        [ "$failed" -eq 0 ] || { echo "fuzz: a target crashed (see above)" >&2; exit 1; }
        ;;
    long)
        runs="${1:-10000000}"
        shift || true
        [ "$#" -gt 0 ] && targets=("$@")
        build
        limit=()
        [ -n "${FUZZ_MAX_SECONDS:-}" ] && limit=(-max_total_time="$FUZZ_MAX_SECONDS")
        echo "== $(date -u +%FT%TZ) long: $runs inputs per target${FUZZ_MAX_SECONDS:+, at most ${FUZZ_MAX_SECONDS}s each}" >>"$out/report.txt"
        failed=0
        for t in "${targets[@]}"; do run_one "$t" -runs="$runs" "${limit[@]}" || failed=1; done
        [ "$failed" -eq 0 ] || { echo "fuzz: a target crashed (see above)" >&2; exit 1; }
        ;;
    run)
        t="${1:?target}"
        shift
        build
        exec "$(bin "$t")" -max_len=65536 -rss_limit_mb=2048 "$@"
        ;;
    *)
        echo "usage: scripts/fuzz.sh build | smoke [SECONDS] | long [RUNS] [TARGET...] | run TARGET [ARGS...]" >&2
        exit 2
        ;;
esac
