#!/usr/bin/env bash
# The main job end to end on embedded defaults: installs what is missing (redis-server), builds,
# and runs `vk-parser demo` (the simulator, a private Redis, parquet in ./data).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vk-parser/target}"

# shellcheck source=scripts/install-deps.sh
source scripts/install-deps.sh
ensure_redis_server

exec cargo run --locked --bin vk-parser -- demo "$@"
