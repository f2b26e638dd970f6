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
}
