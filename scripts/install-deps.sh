# Sourced by scripts/test.sh and scripts/demo.sh: installs the system packages the project needs
# when they are missing, saying what it does. Debian/Ubuntu (apt-get); root or sudo.

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      echo "error: $* missing and not root (no sudo): install with apt-get install -y $*" >&2
      return 1
    fi
  fi
  echo "== installing $* (apt-get install -y $*)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_redis_server() {
  if command -v redis-server >/dev/null 2>&1; then
    echo "== redis-server present: $(redis-server --version | cut -d' ' -f3)"
  else
    echo "== redis-server is missing: the tests start their own private redis-server"
    apt_install redis-server
  fi
  # The cluster test joins its nodes with redis-cli (Debian's redis-tools, which redis-server
  # depends on; a server installed some other way may lack it).
  if ! command -v redis-cli >/dev/null 2>&1; then
    echo "== redis-cli is missing: the cluster test creates its cluster with it"
    apt_install redis-tools
  fi
}

# ensure_python_module MODULE WHY: pip-installs MODULE when python3 cannot import it.
ensure_python_module() {
  local module="$1" why="$2"
  if python3 -c "import $module" >/dev/null 2>&1; then
    echo "== $module present: $(python3 -c "import $module; print($module.__version__)")"
    return 0
  fi
  echo "== $module is missing: $why"
  if ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-pip
  elif ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  echo "== installing $module (pip install $module)"
  # Debian's system python refuses plain pip installs (PEP 668); then fall back to
  # --break-system-packages, which only adds the module and its dependencies.
  pip install --quiet "$module" 2>/dev/null \
    || python3 -m pip install --quiet "$module" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$module"
}

ensure_pyarrow() {
  ensure_python_module pyarrow "tests/it/tables.rs checks that pyarrow reads our parquet files"
}

ensure_networkx() {
  ensure_python_module networkx "tests/it/demo.rs checks that networkx opens vk-parser's GEXF and GraphML exports"
}
