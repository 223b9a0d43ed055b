#!/usr/bin/env bash
# Builds the production image (Dockerfile) for its tests (test/e2e/production-image.test.ts,
# test/e2e/production-compose.test.ts) without a registry, once per set of inputs:
#   - cldpd-test/node-base:<node version>: the Debian bookworm base (scripts/real-claude.sh
#     makes it with debootstrap) with this machine's Node and npm in /usr/local and a user
#     `node` (uid and gid 1000), the shape of the official node image the Dockerfile names;
#   - cldpd-test/production:<hash>: `docker build --build-arg BASE_IMAGE=<that>` of this
#     checkout, <hash> covering the base image and every file the build reads (Dockerfile,
#     .dockerignore, package.json, package-lock.json, tsconfig*.json, scripts/bundle.mjs,
#     src/, app.yml), so a second run with the same inputs only checks. `npm ci` and
#     `apt-get install redis-server tini` run inside the build (the npm registry and the
#     Debian mirror must answer).
# Prints the image's tag last. `--tag` prints the tag the inputs give and builds nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

debian_tag=cldpd-test/debian:bookworm
repository=cldpd-test/production
# The way the node base is put together: a change here gives it a new tag.
recipe=1
mkdir -p "$CLDPD_LOGS"
log=$CLDPD_LOGS/production-image.log

node_bin=$(command -v node || true)
[ -n "$node_bin" ] || { echo "production-image: no node on PATH: install Node 20 or later (cldpd itself needs it)" >&2; exit 1; }
node_bin=$(readlink -f "$node_bin")
node_version=$("$node_bin" -p 'process.versions.node')
base_tag=cldpd-test/node-base:$node_version-$recipe

# The files the build context holds (the .dockerignore lets only these in), in a stable order.
inputs() {
  cd "$root"
  printf '%s\n' Dockerfile .dockerignore package.json package-lock.json tsconfig.json tsconfig.build.json scripts/bundle.mjs app.yml
  find src -type f | LC_ALL=C sort
}

tag_for() { # base image id
  { echo "base $1"; cd "$root" && inputs | while IFS= read -r f; do sha256sum "$f"; done; } | sha256sum | cut -c1-12
}

make_base() {
  if ! docker image inspect "$debian_tag" >/dev/null 2>&1; then
    echo "production-image: $debian_tag is missing: making it with scripts/real-claude.sh"
    bash "$here/real-claude.sh"
  fi
  docker image inspect "$base_tag" >/dev/null 2>&1 && return 0
  major=${node_version%%.*}
  [ "$major" -ge 20 ] || { echo "production-image: cldpd needs Node >= 20; this machine's node is $node_version: install Node 20 or later" >&2; exit 1; }
  npm_dir=$(npm root -g)/npm
  [ -f "$npm_dir/bin/npm-cli.js" ] || { echo "production-image: npm is not at $npm_dir: install npm beside node" >&2; exit 1; }
  # The mirror apt is set up with here, as scripts/real-claude.sh picks it for debootstrap.
  mirror=${CLDPD_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
      | grep -v security | head -1 | awk '{print $NF}' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
  fi
  echo "production-image: building $base_tag (Node $node_version from $node_bin, apt from $mirror)"
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' RETURN
  mkdir -p "$ctx/libs"
  cp "$node_bin" "$ctx/node"
  cp -r "$npm_dir" "$ctx/npm"
  # This machine's certificate authorities: npm ci inside the build reaches the registry the
  # way this machine does (through a proxy that signs with an authority of its own, say).
  ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
  if [ -f "$ca" ]; then cp "$ca" "$ctx/ca-certificates.crt"; else : >"$ctx/ca-certificates.crt"; fi
  # The libraries node links against that the Debian base lacks go in with it (none for a
  # node built for bookworm or older), as scripts/real-gemini.sh does.
  copy_missing_libs "$node_bin" "$debian_tag" "$ctx/libs" production-image
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian_tag
COPY libs/ /usr/local/lib/
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /usr/local/share/cldpd-test/ca-certificates.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/cldpd-test/ca-certificates.crt
RUN ldconfig && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
    && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
    && echo 'deb $mirror bookworm main' >/etc/apt/sources.list \\
    && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
    && node -v && npm -v
DOCKERFILE
  docker build -q --network host -t "$base_tag" "$ctx" >>"$log" 2>&1 || { tail -20 "$log"; exit 1; }
}

if [ "${1:-}" = --tag ]; then
  base_id=$(docker image inspect -f '{{.Id}}' "$base_tag" 2>/dev/null) \
    || { echo "production-image: $base_tag is missing: run scripts/production-image.sh" >&2; exit 1; }
  echo "$repository:$(tag_for "$base_id")"
  exit 0
fi

make_base
tag=$repository:$(tag_for "$(docker image inspect -f '{{.Id}}' "$base_tag")")
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  echo "production-image: building $tag from $base_tag (npm ci and apt-get inside the build; log: $log)"
  start=$(date +%s)
  # The build's steps on the host's network: they need the registry and the mirror only, and
  # an engine whose default bridge is gone (or never made) builds all the same.
  docker build --network host --build-arg "BASE_IMAGE=$base_tag" -t "$tag" "$root" >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
  echo "production-image: built $tag in $(($(date +%s) - start))s"
  # Earlier builds of other inputs go (the layers they share with this one stay).
  for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$repository"); do
    [ "$old" = "$tag" ] || docker image rm "$old" >/dev/null 2>&1 || true
  done
fi
echo "production-image: ready: image $tag"
echo "$tag"
