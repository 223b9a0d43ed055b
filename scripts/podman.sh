#!/usr/bin/env bash
# Podman for cldpd's tests, as root: installs Debian's podman and what it needs where missing,
# makes an unprivileged user with subordinate id ranges, and starts two API services (Docker's
# compatible API) unless one answers already on its socket:
#   rootless: `podman system service` as $CLDPD_PODMAN_USER, on
#             unix://<its runtime dir>/podman/podman.sock
#   rootful:  `podman system service` as root, on unix:///run/cldpd-podman/podman.sock
#             (never /run/podman/podman.sock, which a system podman may serve)
# The sockets are written to /run/cldpd-podman/env (CLDPD_PODMAN_ROOTLESS and
# CLDPD_PODMAN_ROOTFUL, as DOCKER_HOST values), which the tests read. The pids of the services
# this script started go to /run/cldpd-podman/pids; `scripts/podman.sh stop` stops them, and
# the rootless user's pause process, again. Idempotent; cheap when all is in place.
set -uo pipefail

CLDPD_LOGS=${CLDPD_LOGS:-/tmp/cldpd-services}
user=${CLDPD_PODMAN_USER:-cldpd-podman}
state=/run/cldpd-podman
rootful_sock=$state/podman.sock

say() { echo "podman.sh: $*"; }

answers() { # socket path
  [ -S "$1" ] && curl -sf --max-time 5 --unix-socket "$1" http://d/_ping >/dev/null 2>&1
}

wait_answer() { # socket path, seconds, log, pid
  local i
  for i in $(seq 1 $(($2 * 5))); do
    answers "$1" && return 0
    kill -0 "$4" 2>/dev/null || break
    sleep 0.2
  done
  say "the service on $1 did not answer (within $2 s); its log ($3) ends:"; tail -20 "$3"; return 1
}

stop_all() {
  [ -f "$state/pids" ] || return 0
  local pid
  while read -r pid; do
    [ -n "$pid" ] || continue
    # Its process group (setsid made it the leader): rootless, the service's own child in the
    # user namespace goes with it.
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 -- "-$pid" 2>/dev/null
  done <"$state/pids"
  rm -f "$state/pids"
  # What the services leave running on their own: rootless, the user's pause process (it
  # holds the user namespace), slirp4netns and the conmons of exec sessions (they linger for
  # minutes): every process of the user, which is Podman's alone. Rootful, the conmons and
  # helpers whose command line names the rootful service's own storage.
  local p
  if id "$user" >/dev/null 2>&1; then
    for _ in $(seq 1 10); do
      [ -n "$(ps -u "$user" -o pid= -o stat= | awk '$2 !~ /^Z/')" ] || break
      for p in $(ps -u "$user" -o pid=); do kill -9 "$p" 2>/dev/null; done
      sleep 0.2
    done
  fi
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "$state/storage" && kill -9 "${p#/proc/}" 2>/dev/null
  done
  # Rootful Podman's storage keeps a private mount of its own overlay directory.
  mountpoint -q /var/lib/cldpd-podman/storage/overlay 2>/dev/null && umount /var/lib/cldpd-podman/storage/overlay
  return 0
}

if [ "${1:-}" = stop ]; then stop_all; exit 0; fi
[ "$(id -u)" = 0 ] || { say "run me as root (I install packages and add a user)"; exit 1; }
mkdir -p "$CLDPD_LOGS" "$state"

# The packages: podman and, for it, the id mapper, user-mode networking, an init for
# HostConfig.Init, netavark and aardvark-dns (its network backend), crun, and curl to ask.
missing=()
for pair in podman:podman newuidmap:uidmap slirp4netns:slirp4netns catatonit:catatonit \
  fuse-overlayfs:fuse-overlayfs crun:crun curl:curl; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ -x /usr/lib/podman/netavark ] || command -v netavark >/dev/null 2>&1 || missing+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || command -v aardvark-dns >/dev/null 2>&1 || missing+=(aardvark-dns)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (log: $CLDPD_LOGS/podman-apt.log)"
  apt-get update -q >"$CLDPD_LOGS/podman-apt.log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$CLDPD_LOGS/podman-apt.log" 2>&1 \
    || { say "apt-get install failed:"; tail -20 "$CLDPD_LOGS/podman-apt.log"; exit 1; }
fi

# The unprivileged user, with 65536 subordinate ids of its own and a runtime dir.
if ! id "$user" >/dev/null 2>&1; then
  useradd --system --create-home --home-dir "/home/$user" --shell /usr/sbin/nologin "$user" || exit 1
fi
uid=$(id -u "$user"); gid=$(id -g "$user"); home=$(getent passwd "$user" | cut -d: -f6)
for f in /etc/subuid /etc/subgid; do
  grep -q "^$user:" "$f" 2>/dev/null || echo "$user:1065536:65536" >>"$f"
done
run="/run/user/$uid"
mkdir -p "$run/podman" && chown "$uid:$gid" "$run" "$run/podman" && chmod 700 "$run"
rootless_sock=$run/podman/podman.sock

# No systemd here to hand out cgroups or keep a journal: cgroupfs and a file of events, for both.
# On a hybrid cgroup hierarchy (v1 controllers beside an empty v2 one) crun refuses to create
# a container ("cgroups in hybrid mode not supported"): runc then, which takes it.
conf="$state/containers.conf"
runtime=crun
[ -d /sys/fs/cgroup/unified ] && runtime=runc
# Rootful Podman gives containers 1048576 open files and processes unless told otherwise, which
# fails ("error setting rlimit type 7") where this shell's hard limits are lower: its own then.
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=32768
# Podman's service holds itself to 32768 processes where it may not raise the limit.
[ "$nproc" -gt 32768 ] && nproc=32768
# Rootful Podman's own storage, under paths of its own, so that its leftovers are told apart.
printf '[storage]\ndriver = "overlay"\ngraphroot = "/var/lib/cldpd-podman/storage"\nrunroot = "%s/storage"\n' "$state" >"$state/storage.conf"
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "%s"\n' \
  "$nofile" "$nofile" "$nproc" "$nproc" "$runtime" >"$conf.new" && mv "$conf.new" "$conf"
mkdir -p "$home/.config/containers"
cp "$conf" "$home/.config/containers/containers.conf"
# Overlay (the kernel's own, unprivileged) rather than the copying vfs podman falls back to.
printf '[storage]\ndriver = "overlay"\n' >"$home/.config/containers/storage.conf"
chown -R "$uid:$gid" "$home/.config"

touch "$state/pids"
if ! answers "$rootless_sock"; then
  say "starting rootless podman as $user on $rootless_sock (log: $CLDPD_LOGS/podman-rootless.log)"
  rm -f "$rootless_sock"
  # The shell records its own pid and becomes the service (exec), so the pid is the service's;
  # the background subshell becomes it too, with no hold on this script's output.
  lines=$(wc -l <"$state/pids")
  (cd / && exec setsid bash -c 'echo $$ >>"$0"; exec "$@"' "$state/pids" \
    setpriv --reuid="$uid" --regid="$gid" --init-groups \
    env -i HOME="$home" USER="$user" XDG_RUNTIME_DIR="$run" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin \
    podman system service --time=0 "unix://$rootless_sock") >"$CLDPD_LOGS/podman-rootless.log" 2>&1 </dev/null &
  for _ in $(seq 1 25); do [ "$(wc -l <"$state/pids")" -gt "$lines" ] && break; sleep 0.2; done
  wait_answer "$rootless_sock" 60 "$CLDPD_LOGS/podman-rootless.log" "$(tail -1 "$state/pids")" || exit 1
fi
if ! answers "$rootful_sock"; then
  say "starting rootful podman on $rootful_sock (log: $CLDPD_LOGS/podman-rootful.log)"
  rm -f "$rootful_sock"
  lines=$(wc -l <"$state/pids")
  (cd / && CONTAINERS_CONF="$conf" CONTAINERS_STORAGE_CONF="$state/storage.conf" exec setsid bash -c 'echo $$ >>"$0"; exec "$@"' "$state/pids" \
    podman system service --time=0 "unix://$rootful_sock") >"$CLDPD_LOGS/podman-rootful.log" 2>&1 </dev/null &
  for _ in $(seq 1 25); do [ "$(wc -l <"$state/pids")" -gt "$lines" ] && break; sleep 0.2; done
  wait_answer "$rootful_sock" 60 "$CLDPD_LOGS/podman-rootful.log" "$(tail -1 "$state/pids")" || exit 1
fi
printf 'CLDPD_PODMAN_ROOTLESS=unix://%s\nCLDPD_PODMAN_ROOTFUL=unix://%s\n' "$rootless_sock" "$rootful_sock" >"$state/env"
say "rootless: unix://$rootless_sock; rootful: unix://$rootful_sock (both in $state/env)"
