#!/usr/bin/env bash
# One command from a fresh clone to a running converter on the embedded default (local disk, SQLite queue,
# in-process worker): installs what is missing, builds, starts the server, converts data/input/example.mp4
# once to show the whole path, and keeps serving until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")"

major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$major" -lt 20 ]; then
  echo "Node.js 20 or newer is needed (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

scripts/system-deps.sh run
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent

export INPUT_DIR="${INPUT_DIR:-./data/input}" OUTPUT_DIR="${OUTPUT_DIR:-./data/output}"
export PORT="${PORT:-8080}" HOST="${HOST:-127.0.0.1}"
mkdir -p "$INPUT_DIR" "$OUTPUT_DIR"
if [ ! -f "$INPUT_DIR/example.mp4" ]; then
  echo "Making a 10 s sample video at $INPUT_DIR/example.mp4"
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=10" \
    -f lavfi -i "sine=frequency=440:duration=10" -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p \
    -c:a aac -shortest "$INPUT_DIR/example.mp4"
fi

node dist/cli/main.js serve &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM
node --import tsx scripts/demo.ts "http://127.0.0.1:${PORT}" example.mp4 || true
echo "Serving on http://${HOST}:${PORT} (Ctrl-C stops). Try:"
echo "  curl -X POST http://127.0.0.1:${PORT}/encode -H 'content-type: application/json' -d '{\"video_filename\":\"example.mp4\"}'"
wait $server
