#!/usr/bin/env bash
# Prepares what the real-Claude-Code test suite (test/real-claude) needs, once per machine:
#   - the Claude Code CLI at the pinned version (its linux-x64 native binary, from npm),
#   - a Debian bookworm base image made with debootstrap (no registry needed) + docker import,
#   - that image with the CLI in /usr/local/bin, which the suite's pods build FROM.
# Everything is cached: a second run only checks. Prints the image tag and binary path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

version=$(node -p 'require(process.argv[1]).config.claudeCodeVersion' "$here/../package.json")
cache=${CLDPD_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cldpd}
debian_tag=cldpd-test/debian:bookworm
claude_tag=cldpd-test/claude-code:$version
mirror=${CLDPD_DEBIAN_MIRROR:-}
mkdir -p "$cache" "$CLDPD_LOGS"

# The mirror apt is set up with, so debootstrap reaches the same one.
if [ -z "$mirror" ]; then
  mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -v security | head -1 | awk '{print $NF}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi

binary=$cache/claude-code-$version/claude
if [ ! -x "$binary" ]; then
  echo "real-claude: fetching @anthropic-ai/claude-code-linux-x64@$version"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@anthropic-ai/claude-code-linux-x64@$version" >/dev/null 2>>"$CLDPD_LOGS/real-claude.log")
  tar -xzf "$tmp"/*.tgz -C "$tmp"
  mkdir -p "$(dirname "$binary")"
  mv "$tmp/package/claude" "$binary.partial" && mv "$binary.partial" "$binary"
  rm -rf "$tmp"
fi

if ! docker image inspect "$debian_tag" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "real-claude: installing debootstrap (log: $CLDPD_LOGS/apt.log)"
    as_root apt-get update -q >>"$CLDPD_LOGS/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q debootstrap >>"$CLDPD_LOGS/apt.log" 2>&1
  fi
  root=$(mktemp -d)
  echo "real-claude: debootstrap bookworm from $mirror (about 2 minutes; log: $CLDPD_LOGS/debootstrap.log)"
  as_root debootstrap --variant=minbase --include=git,ca-certificates bookworm "$root" "$mirror" \
    >"$CLDPD_LOGS/debootstrap.log" 2>&1 || { tail -20 "$CLDPD_LOGS/debootstrap.log"; exit 1; }
  as_root rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
  as_root tar -C "$root" -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$debian_tag" >/dev/null
  as_root rm -rf "$root"
fi

if ! docker image inspect "$claude_tag" >/dev/null 2>&1; then
  echo "real-claude: building $claude_tag"
  ctx=$(mktemp -d)
  ln "$binary" "$ctx/claude" 2>/dev/null || cp "$binary" "$ctx/claude"
  printf 'FROM %s\nCOPY claude /usr/local/bin/claude\n' "$debian_tag" >"$ctx/Dockerfile"
  docker build -q -t "$claude_tag" "$ctx" >>"$CLDPD_LOGS/real-claude.log" 2>&1 || { tail -20 "$CLDPD_LOGS/real-claude.log"; exit 1; }
  rm -rf "$ctx"
fi
echo "real-claude: ready: image $claude_tag, binary $binary"
