#!/usr/bin/env bash
# ggvk's activation rounding (src/quant/act.rs) against ggml's CPU backend, bit for bit: writes 102400 inputs
# (random over many magnitudes, zero blocks, halfway cases, +/- max ties, tiny and huge values), runs ggml's
# from_float for Q8_0, Q8_1, Q8_K and BF16 on them (tests/e2e/act_round_ref.c, linked to the pinned reference
# build), then the ignored test tests/act_round_ggml.rs compares.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
BIN=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" | tail -n 1)
SRC=$(bash "$GGVK_ROOT/scripts/reference-llama.sh" --source-only | tail -n 1)
DIR="${GGVK_ACT_XCHECK_DIR:-$GGVK_CACHE/act-round-xcheck}"
mkdir -p "$DIR"
cc -O2 -Wall -Wextra -Werror -I"$SRC/ggml/include" "$GGVK_ROOT/tests/e2e/act_round_ref.c" \
  -L"$BIN" -lggml-cpu -lggml-base -Wl,-rpath,"$BIN" -o "$DIR/act_round_ref"
python3 - "$DIR/in.bin" <<'PY'
import random, struct, sys
random.seed(7)
vals = []
for b in range(400):  # blocks of 256
    c = b % 9
    u = lambda: random.uniform(-1, 1)
    if c == 0: v = [u() for _ in range(256)]
    elif c == 1: v = [u() * 10 ** random.randint(-6, 6) for _ in range(256)]
    elif c == 2: v = [0.0] * 256
    elif c == 3: v = [-127.0 if i == 1 else (i % 100) - 50.5 for i in range(256)]  # scale 1: exact halfway cases
    elif c == 4: v = [7.25 if i == 3 else -7.25 if i == 9 else u() for i in range(256)]  # +/- max tie
    elif c == 5: v = [u() * 1e-30 for _ in range(256)]
    elif c == 6: v = [u() * 1e6 for _ in range(256)]
    elif c == 7: v = [u() * 2.0 ** random.randint(-12, 12) for _ in range(256)]
    else: v = [1.0 if i == 0 else (random.randint(-126, 126) + 0.5) / 127.0 for i in range(256)]  # near halfway
    vals += v
open(sys.argv[1], "wb").write(struct.pack("<%df" % len(vals), *vals))
PY
(cd "$DIR" && ./act_round_ref in.bin 102400)
cd "$GGVK_ROOT"
GGVK_ACT_XCHECK_DIR="$DIR" cargo test --release --test act_round_ggml -- --ignored --nocapture
