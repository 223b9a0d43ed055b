# Shared by scripts/setup.sh and .ci/run: install the OS packages cldpd needs and start the
# daemons that are not already answering. Daemons are detached (setsid) with their output in
# log files, so they never hold a terminal's or CI's stdout.

CLDPD_LOGS=${CLDPD_LOGS:-/tmp/cldpd-services}
STARTED_PIDS=()

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Installs docker.io, redis-server, busybox-static (static: test pods are FROM scratch) and git where missing.
install_missing() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
  # Debian's browser, for the tests that render status comments the way GitHub shows them.
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  [ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
  # git with its git-http-backend, for the tests that clone from and push to a real git server.
  { command -v git >/dev/null 2>&1 && [ -x "$(git --exec-path)/git-http-backend" ]; } || missing+=(git)
  # Debian's docker-compose, for the test that starts docker-compose.yml as it is.
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  # python3's pty module, for the tests that drive `cldpd attach` through a pseudo-terminal.
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  # openssl and ip, for the second Docker engine of the tests of several engines (scripts/second-engine.sh).
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "cldpd: please install ${missing[*]} with your package manager (no apt-get here)"; return 1
  fi
  mkdir -p "$CLDPD_LOGS"
  echo "cldpd: installing ${missing[*]} (log: $CLDPD_LOGS/apt.log)"
  as_root apt-get update -q >"$CLDPD_LOGS/apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >>"$CLDPD_LOGS/apt.log" 2>&1 \
    || { echo "cldpd: apt-get install failed:"; tail -20 "$CLDPD_LOGS/apt.log"; return 1; }
}

wait_for() { # name seconds command...
  local name=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "cldpd: $name did not answer within ${seconds}s"; return 1
}

# Starts dockerd unless an engine answers already; its pid goes to STARTED_PIDS.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  mkdir -p "$CLDPD_LOGS"
  if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ] && as_root systemctl start docker 2>/dev/null; then
    wait_for dockerd 60 docker info && return 0
  fi
  echo "cldpd: starting dockerd (log: $CLDPD_LOGS/dockerd.log)"
  if [ "$(id -u)" = 0 ]; then
    setsid dockerd >"$CLDPD_LOGS/dockerd.log" 2>&1 </dev/null &
  else
    sudo setsid dockerd >"$CLDPD_LOGS/dockerd.log" 2>&1 </dev/null &
  fi
  STARTED_PIDS+=($!)
  wait_for dockerd 60 docker info || { tail -20 "$CLDPD_LOGS/dockerd.log"; return 1; }
}

# Starts redis-server on $1 (default 6379) unless one answers; noeviction, as BullMQ needs,
# and 48 databases: each integration test file empties one of its own.
ensure_redis() {
  local port=${1:-6379}
  redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
  mkdir -p "$CLDPD_LOGS"
  echo "cldpd: starting redis-server on port $port (log: $CLDPD_LOGS/redis.log)"
  setsid redis-server --port "$port" --save '' --appendonly no --maxmemory-policy noeviction --databases 48 \
    >"$CLDPD_LOGS/redis.log" 2>&1 </dev/null &
  STARTED_PIDS+=($!)
  wait_for redis-server 30 redis-cli -p "$port" ping
}

# Stops what ensure_* started.
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    as_root kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  done
  STARTED_PIDS=()
}

# Copies into directory $3 the libraries binary $1 links against that image $2 lacks (none
# for a binary built for that Debian release or an older one); $4 names the caller in what
# it prints.
copy_missing_libs() {
  local bin=$1 image=$2 dest=$3 who=$4 libs names missing lib
  libs=$(ldd "$bin" | awk '/=> \//{print $3}')
  names=$(for lib in $libs; do basename "$lib"; done)
  # shellcheck disable=SC2086
  missing=$(docker run --rm --network none "$image" sh -c 'for n; do [ -e "/lib/x86_64-linux-gnu/$n" ] || [ -e "/usr/lib/x86_64-linux-gnu/$n" ] || echo "$n"; done' sh $names)
  for lib in $libs; do
    if printf '%s\n' "$missing" | grep -qxF "$(basename "$lib")"; then
      echo "$who: adding $(basename "$lib") (not in $image)"
      cp -L "$lib" "$dest/"
    fi
  done
}
