#!/usr/bin/env bash
# The main job end to end on embedded defaults: installs what is missing (redis-server), builds
# the service and the VK simulator, and runs `vk-parser demo`: a private Redis, vk-sim, one
# DEFAULT report (stage 1 and 2), parquet in ./data and a summary. Extra flags go to the demo
# (see `vk-parser demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vk-parser/target}"

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
ensure_redis_server

cargo build --locked --workspace --bins
exec "$CARGO_TARGET_DIR/debug/vk-parser" demo "$@"
