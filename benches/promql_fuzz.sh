#!/usr/bin/env bash
# Runs the grammar-based PromQL fuzzer (collector/promql/tests/fuzz) for MINUTES minutes in an
# optimised build and prints its summary: queries evaluated, error classes, failures (panics,
# malformed errors or results, one-step range != instant). The test suite runs the same
# fuzzer for 20 s in debug mode. Replay a run with OSPREY_PROMQL_FUZZ_SEED=<printed seed>.
# Run by hand, not in CI:
#   bash benches/promql_fuzz.sh [MINUTES]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
# Release speed without fat LTO / one codegen unit: the build would take longer than the run.
# (Test targets always unwind, so the fuzzer can catch and count panics.)
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
OSPREY_PROMQL_FUZZ_SECS="$((MINUTES * 60))" \
  cargo test --release -q -p osprey-promql --test fuzz -- --nocapture --test-threads=1
