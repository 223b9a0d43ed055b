#!/usr/bin/env bash
# Prepares what the real-Codex test suite (test/real-codex) needs, once per machine:
#   - the Codex CLI at the pinned version: its linux-x64 native package from npm
#     (@openai/codex@<version>-linux-x64, what @openai/codex's optionalDependencies install),
#   - the Debian bookworm base image (scripts/real-claude.sh makes it, with debootstrap),
#   - that image with the CLI laid out as the package has it, which the suite's pods build FROM.
# Everything is cached: a second run only checks. Prints the image tag and binary path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

version=$(node -p 'require(process.argv[1]).config.codexVersion' "$here/../package.json")
cache=${CLDPD_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cldpd}
debian_tag=cldpd-test/debian:bookworm
codex_tag=cldpd-test/codex:$version
mkdir -p "$cache" "$CLDPD_LOGS"

# The package's vendor tree: bin/codex (static musl, no libraries needed), bin/codex-code-mode-host
# (the CLI runs every tool call through it and looks for it beside itself), codex-path/rg and
# codex-resources/bwrap. Its voice resources (51 MB of GStreamer) are left out: no audio here.
dir=$cache/codex-$version
if [ ! -x "$dir/bin/codex" ] || [ ! -x "$dir/bin/codex-code-mode-host" ]; then
  echo "real-codex: fetching @openai/codex@$version-linux-x64 (170 MB)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@openai/codex@$version-linux-x64" >/dev/null 2>>"$CLDPD_LOGS/real-codex.log")
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  vendor=$tmp/package/vendor/x86_64-unknown-linux-musl
  rm -rf "$vendor/codex-resources/voice" "$dir.partial"
  mv "$vendor" "$dir.partial" && rm -rf "$dir" && mv "$dir.partial" "$dir"
  rm -rf "$tmp"
fi
binary=$dir/bin/codex

if ! docker image inspect "$debian_tag" >/dev/null 2>&1; then
  echo "real-codex: $debian_tag is missing; making it with scripts/real-claude.sh"
  bash "$here/real-claude.sh" >/dev/null
fi

if ! docker image inspect "$codex_tag" >/dev/null 2>&1; then
  echo "real-codex: building $codex_tag"
  ctx=$(mktemp -d)
  cp -a "$dir" "$ctx/codex"
  # /usr/local/bin/codex is a link: the CLI finds its code-mode host and resources through
  # its real path (/proc/self/exe), as npm's install lays them out.
  printf 'FROM %s\nCOPY codex /usr/local/lib/codex\nRUN ln -s /usr/local/lib/codex/bin/codex /usr/local/bin/codex\n' "$debian_tag" >"$ctx/Dockerfile"
  docker build -q -t "$codex_tag" "$ctx" >>"$CLDPD_LOGS/real-codex.log" 2>&1 || { tail -20 "$CLDPD_LOGS/real-codex.log"; exit 1; }
  rm -rf "$ctx"
fi
echo "real-codex: ready: image $codex_tag, binary $binary"
