#!/usr/bin/env bash
# A second Docker engine beside the machine's own, for the tests of several engines:
#   scripts/second-engine.sh start   starts it (or reuses one that answers), prints its settings
#   scripts/second-engine.sh stop    stops it, removes its bridge; its data stays cached
#   scripts/second-engine.sh env     prints its settings (DOCKER_HOST lines) without starting it
#
# The engine has its own data root (cached under ~/.cache/cldpd/engine-b: images built there
# persist from run to run), exec root, pid file, a unix socket and a TLS TCP listener whose
# certificates (made with openssl, cached) a client must present, and its own bridge with
# its own subnet. It leaves docker0 and the first engine's iptables chains alone: it runs
# with --iptables=false (a second dockerd with iptables on would remove and remake the DOCKER
# chains the first engine's published ports and isolation live in), so its containers have no
# NAT to the outside (nothing here needs it) and Docker does not wall its internal networks
# off with iptables (they still have no route out: no gateway address is on their bridges).
# Root only. Idempotent: start twice starts one engine, stop twice stops it once.
set -euo pipefail

CACHE="${CLDPD_ENGINE_B_CACHE:-${HOME}/.cache/cldpd/engine-b}"
RUN_DIR=/run/cldpd-engine-b
SOCKET="$RUN_DIR/docker.sock"
PIDFILE="$RUN_DIR/docker.pid"
LOG="$RUN_DIR/dockerd.log"
PORT="${CLDPD_ENGINE_B_PORT:-23760}"
BRIDGE=cldpdb0
BRIDGE_CIDR=10.231.0.1/24
POOL=10.232.0.0/16
CERTS="$CACHE/certs"

settings() {
  echo "ENGINE_B_SOCKET=unix://$SOCKET"
  echo "ENGINE_B_TCP=tcp://127.0.0.1:$PORT"
  echo "ENGINE_B_CERT_PATH=$CERTS/client"
  echo "ENGINE_B_CA=$CERTS/client/ca.pem"
}

answers() {
  [ -S "$SOCKET" ] && DOCKER_HOST="unix://$SOCKET" timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# The CA, the server's certificate (for 127.0.0.1 and localhost) and a client certificate,
# laid out as the docker CLI reads DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem.
make_certs() {
  [ -s "$CERTS/client/key.pem" ] && [ -s "$CERTS/server/key.pem" ] && return 0
  rm -rf "$CERTS" && mkdir -p "$CERTS/ca" "$CERTS/server" "$CERTS/client"
  local ca="$CERTS/ca"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=cldpd engine-b CA' \
    -keyout "$ca/key.pem" -out "$ca/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout "$CERTS/server/key.pem" -out "$ca/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$ca/server.ext"
  openssl x509 -req -in "$ca/server.csr" -CA "$ca/ca.pem" -CAkey "$ca/key.pem" -CAcreateserial -days 3650 \
    -extfile "$ca/server.ext" -out "$CERTS/server/cert.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj '/CN=cldpd worker' -keyout "$CERTS/client/key.pem" -out "$ca/client.csr" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$ca/client.ext"
  openssl x509 -req -in "$ca/client.csr" -CA "$ca/ca.pem" -CAkey "$ca/key.pem" -CAcreateserial -days 3650 \
    -extfile "$ca/client.ext" -out "$CERTS/client/cert.pem" 2>/dev/null
  cp "$ca/ca.pem" "$CERTS/server/ca.pem"
  cp "$ca/ca.pem" "$CERTS/client/ca.pem"
  chmod 600 "$CERTS"/*/key.pem
}

start() {
  [ "$(id -u)" = 0 ] || { echo "second-engine.sh: run it as root (it starts dockerd)." >&2; exit 1; }
  command -v dockerd >/dev/null || { echo "second-engine.sh: dockerd is missing: install docker.io." >&2; exit 1; }
  command -v openssl >/dev/null || { echo "second-engine.sh: openssl is missing: apt-get install -y openssl." >&2; exit 1; }
  if answers; then settings; return 0; fi
  mkdir -p "$RUN_DIR" "$CACHE/data" "$RUN_DIR/exec"
  make_certs
  # A pid file left by an engine that died: dockerd refuses to start over it.
  if [ -f "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then rm -f "$PIDFILE"; fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # dockerd deletes the interface docker0 (the first engine's default bridge, by name) when it
  # finds a default bridge network stored from an earlier start and an address pool is set:
  # this engine's network store is not kept (its networks are the tests', made anew), and
  # docker0 is put back as it was should it go all the same.
  rm -f "$CACHE/data/network/files/local-kv.db"
  local docker0
  docker0="$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | head -n 1)"
  setsid dockerd \
    --data-root "$CACHE/data" --exec-root "$RUN_DIR/exec" --pidfile "$PIDFILE" \
    -H "unix://$SOCKET" \
    --tlsverify --tlscacert "$CERTS/server/ca.pem" --tlscert "$CERTS/server/cert.pem" --tlskey "$CERTS/server/key.pem" \
    -H "tcp://127.0.0.1:$PORT" \
    --bridge "$BRIDGE" --iptables=false --ip-masq=false \
    --containerd-namespace cldpd-engine-b --containerd-plugins-namespace cldpd-engine-b-plugins \
    --default-address-pool "base=$POOL,size=24" \
    >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    if answers; then
      if [ -n "$docker0" ] && ! ip link show docker0 >/dev/null 2>&1; then
        echo "second-engine.sh: dockerd removed docker0; putting it back ($docker0)" >&2
        ip link add docker0 type bridge && ip addr add "$docker0" dev docker0 && ip link set docker0 up
      fi
      settings
      return 0
    fi
    sleep 0.5
  done
  echo "second-engine.sh: the engine did not answer on $SOCKET within 30 s; its log, $LOG, ends:" >&2
  tail -n 20 "$LOG" >&2
  exit 1
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid="$(cat "$PIDFILE")"
    # Only the dockerd this script started (a pid file outlives a crash, and pids are reused).
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--exec-root $RUN_DIR/exec"; then
      kill "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"
  fi
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE"; fi
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) settings ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
