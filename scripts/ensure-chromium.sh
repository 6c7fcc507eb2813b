#!/usr/bin/env bash
# ensure-chromium.sh installs Debian's chromium package when no chromium binary is on PATH, so
# that the headless-browser test of examples/blog (driven through the DevTools protocol) can run.
#
# Usage: scripts/ensure-chromium.sh
#
# It prints the path of the binary it found or installed. apt-get runs through sudo only when
# the script is not run as root, with DEBIAN_FRONTEND=noninteractive and without recommended
# packages. It installs nothing when chromium is already there.
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

find_chromium() {
	local name
	for name in chromium chromium-browser; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
	done
	return 1
}

if path=$(find_chromium); then
	printf '%s\n' "$path"
	exit 0
fi

SUDO=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 || {
		log "error: chromium is missing and installing it needs root or sudo"
		exit 1
	}
	SUDO=(sudo)
fi

log "installing Debian's chromium package with apt-get"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; } >"$out" 2>&1; then
	cat "$out" >&2
	log "error: apt-get install chromium failed"
	exit 1
fi
hash -r
if ! path=$(find_chromium); then
	log "error: chromium was installed but no chromium binary is on PATH"
	exit 1
fi
printf '%s\n' "$path"
