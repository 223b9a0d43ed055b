#!/usr/bin/env bash
# Prepares what the real-Gemini-CLI test suite (test/real-gemini) needs, once per machine:
#   - the Gemini CLI at the pinned version (its npm package: bundle/gemini.js is self-contained),
#   - the Debian bookworm base image (scripts/real-claude.sh makes it with debootstrap, no registry),
#   - that image with Node (this machine's, >= 20) and the CLI as /usr/local/bin/gemini, which
#     the suite's pods build FROM.
# Everything is cached: a second run only checks. Prints the image tag and the package's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

version=$(node -p 'require(process.argv[1]).config.geminiCliVersion' "$here/../package.json")
cache=${CLDPD_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cldpd}
debian_tag=cldpd-test/debian:bookworm
gemini_tag=cldpd-test/gemini:$version
mkdir -p "$cache" "$CLDPD_LOGS"

package=$cache/gemini-cli-$version
if [ ! -f "$package/bundle/gemini.js" ]; then
  echo "real-gemini: fetching @google/gemini-cli@$version"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@google/gemini-cli@$version" >/dev/null 2>>"$CLDPD_LOGS/real-gemini.log")
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  rm -rf "$package.partial" && mv "$tmp/package" "$package.partial" && rm -rf "$package" && mv "$package.partial" "$package"
  rm -rf "$tmp"
fi

if ! docker image inspect "$debian_tag" >/dev/null 2>&1; then
  echo "real-gemini: $debian_tag is missing: making it with scripts/real-claude.sh"
  bash "$here/real-claude.sh"
fi

if ! docker image inspect "$gemini_tag" >/dev/null 2>&1; then
  node_bin=$(command -v node || true)
  [ -n "$node_bin" ] || { echo "real-gemini: no node on PATH: install Node 20 or later (cldpd itself needs it)"; exit 1; }
  node_bin=$(readlink -f "$node_bin")
  major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "real-gemini: the Gemini CLI needs Node >= 20; this machine's node is $("$node_bin" -v): install Node 20 or later"; exit 1
  fi
  echo "real-gemini: building $gemini_tag (Node $("$node_bin" -v) from $node_bin)"
  ctx=$(mktemp -d)
  mkdir -p "$ctx/libs"
  cp "$node_bin" "$ctx/node"
  # The libraries node links against that the Debian base lacks go in with it (none for a
  # node built for bookworm or older: its libc, libstdc++, libgcc_s and libm are all there).
  copy_missing_libs "$node_bin" "$debian_tag" "$ctx/libs" real-gemini
  cp -r "$package" "$ctx/gemini-cli"
  cat >"$ctx/Dockerfile" <<EOF
FROM $debian_tag
COPY libs/ /usr/local/lib/
COPY node /usr/local/bin/node
COPY gemini-cli /usr/local/lib/node_modules/@google/gemini-cli
RUN ldconfig && ln -s ../lib/node_modules/@google/gemini-cli/bundle/gemini.js /usr/local/bin/gemini \
    && chmod 0755 /usr/local/lib/node_modules/@google/gemini-cli/bundle/gemini.js && node -v && gemini --version
EOF
  docker build -q -t "$gemini_tag" "$ctx" >>"$CLDPD_LOGS/real-gemini.log" 2>&1 || { tail -20 "$CLDPD_LOGS/real-gemini.log"; rm -rf "$ctx"; exit 1; }
  rm -rf "$ctx"
fi
echo "real-gemini: ready: image $gemini_tag, package $package"
