#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the project needs, only those missing.
#   scripts/system-deps.sh run    what the service needs: ffmpeg (ffmpeg + ffprobe), libxml2-utils (xmllint,
#                                 which validates every manifest against the MPD schema before it is published)
#   scripts/system-deps.sh test   plus what the tests need: redis-server, chromium
set -euo pipefail

mode="${1:-run}"
declare -A wanted=([ffmpeg]=ffmpeg [ffprobe]=ffmpeg [xmllint]=libxml2-utils)
if [ "$mode" = test ]; then
  wanted[redis-server]=redis-server
  wanted[chromium]=chromium
fi

missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${missing[*]}. Install them with your system's package manager." >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "Missing: ${missing[*]}; run as root or install sudo." >&2; exit 1; }
  sudo=(sudo)
fi
echo "Installing Debian packages: ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
