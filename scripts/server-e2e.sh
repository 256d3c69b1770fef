#!/usr/bin/env bash
# llama-server end to end: the pinned llama.cpp's llama-server loads libggvk.so (GGML_BACKEND_PATH) and serves a small
# random-weight llama GGUF from GGVK0 (`--device GGVK0 -ngl 99`) with 4 parallel slots (`-np 4`); 8 completion
# requests sent at once (scripts/server_client.py: greedy, 32 tokens, each its own prompt) must get the replies
# (text and token ids) the same server gives on the CPU backend alone (`-ngl 0`); flash attention off on both
# sides (`-fa off`). Vulkan validation layer on in the GGVK0 server. Loopback only; every process runs under
# `timeout`; the servers are killed on exit.
#   bash scripts/server-e2e.sh [TYPES...]      (default: f16; any type make_tiny_llama.py writes)
# Logs in $GGVK_CACHE/server-e2e.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
LIB="$CARGO_TARGET_DIR/release/libggvk.so"
[ -f "$LIB" ] || (cd "$GGVK_ROOT" && cargo build --release --lib)
[ -x "$BIN/llama-server" ] || { echo "server-e2e: no llama-server in $BIN"; exit 1; }
OUTDIR="$GGVK_CACHE/server-e2e"
rm -rf "$OUTDIR"; mkdir -p "$OUTDIR"
TYPES=("$@"); [ ${#TYPES[@]} -gt 0 ] || TYPES=(f16)
CLIENT="$GGVK_ROOT/scripts/server_client.py"
REQUESTS=8
common=(-c 512 -np 4 -fa off --host 127.0.0.1 --no-warmup -v)

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}
trap stop_server EXIT
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# serve TAG MODEL ARGS...: start llama-server with ARGS (and env already exported by the caller's `env`), send the
# requests, write $OUTDIR/TAG.json, stop the server. Another port if the first one could not be bound.
serve() {
  local tag=$1 model=$2; shift 2
  local port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    timeout 900 "$@" -m "$model" --port "$port" "${common[@]}" >"$OUTDIR/$tag.log" 2>&1 </dev/null &
    SERVER_PID=$!
    if timeout 300 python3 "$CLIENT" wait "$port" 240; then break; fi
    echo "$tag: the server did not come up (attempt $attempt):"; tail -n 5 "$OUTDIR/$tag.log"
    stop_server
  done
  [ -n "$SERVER_PID" ] || return 1
  local rc=0
  timeout 600 python3 "$CLIENT" run "$port" "$REQUESTS" 32 "$OUTDIR/$tag.json" || rc=1
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "$tag: the server exited"; tail -n 5 "$OUTDIR/$tag.log"; rc=1; }
  stop_server
  return $rc
}

pass=0
fail=0
for ty in "${TYPES[@]}"; do
  model="$OUTDIR/tiny-llama-$ty.gguf"
  python3 "$GGVK_ROOT/scripts/make_tiny_llama.py" "$model" --type "$ty" >/dev/null
  ok=1
  start=$(date +%s)
  serve "cpu-$ty" "$model" "$BIN/llama-server" -ngl 0 || ok=0
  mid=$(date +%s)
  serve "ggvk-$ty" "$model" env GGML_BACKEND_PATH="$LIB" VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
    "$BIN/llama-server" --device GGVK0 -ngl 99 || ok=0
  end=$(date +%s)
  log="$OUTDIR/ggvk-$ty.log"
  layers=$(grep -aoE 'offloaded [0-9]+/[0-9]+ layers to GPU' "$log" | head -n 1)
  grep -aq "using device GGVK0" "$log" || { echo "$ty: GGVK0 was not used"; ok=0; }
  if [ -z "$layers" ] || [ "$(echo "$layers" | awk -F'[ /]' '{print ($2 == $3)}')" != 1 ]; then
    echo "$ty: not every layer was offloaded ($layers)"; ok=0
  fi
  if grep -aq "GGVK VALIDATION ERROR\|Validation Error" "$log"; then echo "$ty: Vulkan validation errors"; ok=0; fi
  if grep -aq "graph_compute: \|ggvk: .*error" "$log"; then echo "$ty: GGVK reported errors"; ok=0; fi
  slots=$(grep -aoE 'n_slots = [0-9]+' "$log" | head -n 1)
  if [ "$ok" = 1 ] && python3 "$CLIENT" compare "$OUTDIR/cpu-$ty.json" "$OUTDIR/ggvk-$ty.json"; then
    echo "$ty: $REQUESTS concurrent replies from GGVK0 equal the CPU server's ($slots; $layers; CPU server $((mid - start)) s, GGVK0 server $((end - mid)) s)"
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
  fi
done
echo "server-e2e: $pass passed, $fail failed (logs in $OUTDIR)"
[ "$fail" = 0 ]
