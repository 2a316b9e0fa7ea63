#!/usr/bin/env bash
# The README's main command (`npm start`): installs what is missing, brings up the local stack,
# runs the processor on topology/local.yaml and feeds it two live camera streams:
#   cam-1   a looping sequence of solid colours  -> colour_probe (exact labels)
#   demo-1  a Mandelbrot zoom at 5 fps            -> open_nsfw (the real ResNet-50 classifier; on
#           2 CPU cores it manages about 10 frames/s, so this stream is kept slow)
# Ctrl-C stops the cameras and the processor (the stack keeps running: `npx framewire stack down`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# npm ci empties node_modules first, through a symlink too: a git worktree whose node_modules
# links to another checkout's would wipe that one (its package-lock.json, checked out later, looks
# newer). A linked node_modules is only checked.
if [ -L node_modules ]; then
  npm ls --all >/dev/null 2>&1 || { echo "node_modules links to $(readlink node_modules) and does not satisfy package.json: run npm ci there" >&2; exit 1; }
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts
fi
npx tsc -p tsconfig.json
bash scripts/stack.sh up

mkdir -p .stack/logs
# topology/local.yaml listens on FRAMEWIRE_HTTP (README: "Using an existing Kafka and Triton").
http="${FRAMEWIRE_HTTP:-127.0.0.1:8080}"
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "stopping cameras and processor…"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped. The stack is still up: npx framewire stack down"
}
trap cleanup INT TERM EXIT

node bin/framewire.js run --topology topology/local.yaml 2> >(tee -a .stack/logs/processor.log >&2) &
pids+=($!)
for _ in $(seq 1 60); do
  curl -sf "http://$http/readyz" >/dev/null 2>&1 && break
  sleep 1
done

colours="color=c=red:s=640x360:r=25:d=2[a];color=c=0x00FF00:s=640x360:r=25:d=2[b];color=c=blue:s=640x360:r=25:d=2[c];color=c=yellow:s=640x360:r=25:d=2[d];[a][b][c][d]concat=n=4:v=1:a=0,format=yuv420p"
node bin/framewire.js ingest --stream cam-1 --input "lavfi:$colours" --realtime --loop 2>>.stack/logs/ingest.log &
pids+=($!)
node bin/framewire.js ingest --stream demo-1 --input "lavfi:mandelbrot=s=640x360:r=5,format=yuv420p" --realtime 2>>.stack/logs/ingest.log &
pids+=($!)

cat <<MSG

framewire is running on the local stack.
  dashboard  http://$http/            (open it in a browser)
  tail       npx framewire tail                (labels, events, alerts in this terminal;
             npx framewire tail --alerts       try --streams cam-1, --events)
  labels     Kafka topic video.labels  (127.0.0.1:9092)
  events     Kafka topic video.events; alerts: video.alerts (their JPEG snapshots: video.snapshots); dead letters: video.dlq
  WebSocket  ws://$http/ws            (all streams; ?streams=cam-1 for one)
  metrics    http://$http/metrics     readiness: http://$http/readyz
  Triton     http://127.0.0.1:8000/v2/models/colour_probe   metrics: http://127.0.0.1:8002/metrics
  logs       .stack/logs/processor.log, .stack/logs/ingest.log
Press Ctrl-C to stop.

MSG
wait "${pids[0]}"
