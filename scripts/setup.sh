#!/usr/bin/env bash
# One-time machine set-up: installs the Docker engine, Redis, a static busybox and Chromium where
# missing, starts the Docker engine if it is not running, creates an example "hello" pod,
# and prepares the real agents' test images (scripts/real-claude.sh, real-codex.sh,
# real-gemini.sh; skip them with CLDPD_SKIP_REAL_CLAUDE=1).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
CLDPD_LOGS=${CLDPD_LOGS:-${CLDPD_HOME:-$HOME/.cldpd}/logs}

install_missing
ensure_dockerd

pods=${CLDPD_PODS_DIR:-${CLDPD_HOME:-$HOME/.cldpd}/pods}
if [ ! -d "$pods/hello" ]; then
  mkdir -p "$pods/hello"
  cp /bin/busybox "$pods/hello/busybox"
  cp "$here/../examples/pods/hello/Dockerfile" "$here/../examples/pods/hello/pod.json" "$pods/hello/"
  echo "cldpd: created the example pod $pods/hello"
fi
# Only the tests need it: a machine that cannot fetch it (offline) is set up all the same.
if [ "${CLDPD_SKIP_REAL_CLAUDE:-}" != 1 ]; then
  for agent in claude codex gemini; do
    if ! bash "$here/real-$agent.sh"; then
      echo "cldpd: the real $agent test image could not be prepared (see above); its tests will be skipped. Run scripts/real-$agent.sh again later."
    fi
  done
fi
docker info --format 'cldpd: Docker engine {{.ServerVersion}} is ready'
