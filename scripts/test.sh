#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine with Rust:
#   1. installs what is missing (redis-server, pyarrow, networkx) and says so;
#   2. checks formatting and lints (cargo fmt --check, clippy -D warnings);
#   3. runs every test of the workspace, the chaos run last with its figures shown.
# CI (.ci/run) calls exactly this. Builds go to $CARGO_TARGET_DIR, by default a cache folder
# outside the clone so later runs on the same machine reuse them.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vk-parser/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
ensure_redis_server
ensure_pyarrow
ensure_networkx

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked -- --skip chaos::

# The short chaos run on its own, so its figures (kills, restarts, jobs, lost, duplicated)
# show in the output. The long form: CHAOS_KILLS=50 (BENCHMARKS.md).
echo "== chaos run (short form: CHAOS_KILLS=${CHAOS_KILLS:-10})"
# `--workspace` keeps the same build as above (`--test it` alone unifies features differently
# and recompiles polars, the AWS SDK and the service: about 1.5 minutes); the other test
# binaries run no test here.
cargo test --workspace --locked -- chaos:: --nocapture
