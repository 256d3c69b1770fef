#!/usr/bin/env python3
"""Write a small llama-family GGUF with random weights (for end-to-end tests of ggvk in llama.cpp).

    python3 scripts/make_tiny_llama.py OUT.gguf [--arch llama|qwen2|qwen3] [--type q4_0|q8_0|f16|...] [--seed N]

Architectures: llama (also the shape of Mistral), qwen2 (biases on the q/k/v projections), qwen3 (RMS norms of q
and k per head), phi3 (Q, K and V from one fused product, `attn_qkv`, seen through views; NeoX rope; gate and up as
one product, `ffn_up` of 2 x --ff rows, split by the GLU). `--experts N --experts-used K` (llama, qwen3moe) makes the feed-forward a mixture of N experts of
which each token uses K (router `ffn_gate_inp`, expert tensors `ffn_{gate,up,down}_exps`): with llama the shape of
Mixtral, with qwen3moe that of Qwen3-MoE (qwen3's attention, experts of --ff rows each). K-quant files are made from an f32 one with llama-quantize (scripts/tiny-models.sh).

Vocabulary: <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF> (so any prompt tokenizes through byte
fallback) and a few hundred word pieces. Weights are random but scaled so activations stay O(1), and the
output projection is scaled up so greedy choices are not near-ties. Needs the gguf (0.19.0) and numpy packages.
"""
import argparse

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--arch", default="llama", choices=["llama", "qwen2", "qwen3", "qwen3moe", "phi3"])
TYPES = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q6_k", "f16", "bf16", "f32"]
p.add_argument("--type", default="q4_0", choices=TYPES, help="weight type (q4_k, q6_k: with --fast only)")
p.add_argument("--output-type", choices=TYPES, help="type of output.weight (default: --type), e.g. q6_k as in Q4_K_M")
p.add_argument("--seed", type=int, default=1234)
p.add_argument("--vocab", type=int, default=0, help="pad the vocabulary with filler pieces to this many tokens")
p.add_argument("--fast", action="store_true",
               help="q4_0/q8_0/q4_k/q6_k: random quantized blocks written directly (uniform codes, one scale), "
                    "for big models")
p.add_argument("--layers", type=int, default=2)
p.add_argument("--embd", type=int, default=256)
p.add_argument("--ff", type=int, default=512)
p.add_argument("--heads", type=int, default=8)
p.add_argument("--kv-heads", type=int, default=4)
p.add_argument("--ctx", type=int, default=512)
p.add_argument("--experts", type=int, default=0, help="mixture of experts: experts per layer (llama, qwen3moe)")
p.add_argument("--experts-used", type=int, default=2, help="mixture of experts: experts each token uses")
a = p.parse_args()
if a.arch == "qwen3moe" and not a.experts:
    p.error("--arch qwen3moe needs --experts")
if a.experts and (a.arch not in ("llama", "qwen3moe") or not 0 < a.experts_used <= a.experts):
    p.error("--experts needs --arch llama or qwen3moe and 0 < --experts-used <= --experts")
if a.experts and a.fast:
    p.error("--experts writes quantized experts through gguf-py (no --fast)")
if not a.fast and "_k" in (a.type + (a.output_type or "")):
    p.error("q4_k / q6_k weights need --fast (gguf-py has no K-quant quantizer; scripts/tiny-models.sh uses llama-quantize)")
rng = np.random.default_rng(a.seed)

# Vocabulary (SentencePiece-style scores; byte tokens for fallback).
pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
types = [2, 3, 3] + [6] * 256
letters = "abcdefghijklmnopqrstuvwxyz"
words = ["\u2581" + c for c in letters] + list(letters)
words += ["\u2581the", "\u2581a", "\u2581of", "\u2581and", "\u2581to", "\u2581in", "\u2581is", "\u2581it", "\u2581that",
          "\u2581was", "\u2581on", "\u2581for", "\u2581with", "\u2581as", "\u2581at", "\u2581by", "\u2581from", "\u2581",
          ".", ",", "\u2581Once", "\u2581upon", "\u2581time", "\u2581there", "\u2581lived"]
for w in words:
    if w not in pieces:
        pieces.append(w)
        types.append(1)
if a.arch == "phi3":
    # Phi-3's vocabulary has this control token, and llama.cpp sets its attributes by name for models so named.
    pieces.append("<|endoftext|>")
    types.append(3)
scores = [0.0, 0.0, 0.0] + [-1000.0] * 256 + [-float(i) for i in range(len(pieces) - 259)]
while len(pieces) < a.vocab:
    pieces.append(f"\u2581w{len(pieces)}")
    types.append(1)
    scores.append(-float(len(scores)))
n_vocab = len(pieces)

w = gguf.GGUFWriter(a.out, a.arch)
w.add_name(f"ggvk-tiny-{a.arch}")
w.add_context_length(a.ctx)
w.add_embedding_length(a.embd)
w.add_block_count(a.layers)
w.add_feed_forward_length(a.ff)
w.add_head_count(a.heads)
w.add_head_count_kv(a.kv_heads)
w.add_rope_dimension_count(a.embd // a.heads)
w.add_rope_freq_base(10000.0)
w.add_layer_norm_rms_eps(1e-5)
w.add_vocab_size(n_vocab)
if a.experts:
    w.add_expert_count(a.experts)
    w.add_expert_used_count(a.experts_used)
    if a.arch == "qwen3moe":
        w.add_expert_feed_forward_length(a.ff)
w.add_file_type({"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q4_k": 15, "q6_k": 18,
                 "bf16": 32}[a.type])
w.add_tokenizer_model("llama")
w.add_token_list(pieces)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)
w.add_add_bos_token(True)
w.add_add_eos_token(False)

QTYPES = {"q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0, "q4_k": T.Q4_K,
          "q6_k": T.Q6_K, "f16": T.F16, "bf16": T.BF16, "f32": T.F32}
qtype = QTYPES[a.type]


def kquant_blocks(rows, cols, scale, qt):
    """Random K-quant super-blocks: uniform codes, every sub-block scale (and min) equal, d set so that values have
    about the standard deviation `scale` around 0."""
    nb = cols // 256
    if qt == T.Q4_K:
        # 6-bit scale = min = 48 in every sub-block: bytes 0..7 = 0xF0 (low 6 bits 48, top bits 3 for sub-blocks
        # 4..7), bytes 8..11 = 0 (their low nibbles). Value = d * 48 * q - dmin * 48, q uniform 0..15 (std 4.6):
        # dmin = 7.5 d centres it.
        d = scale / (48 * 4.6)
        blocks = np.empty((rows, nb, 144), dtype=np.uint8)
        blocks[:, :, 0:2] = np.float16(d).reshape(1).view(np.uint8)
        blocks[:, :, 2:4] = np.float16(7.5 * d).reshape(1).view(np.uint8)
        blocks[:, :, 4:12] = 0xF0
        blocks[:, :, 12:16] = 0
        blocks[:, :, 16:] = rng.integers(0, 256, size=(rows, nb, 128), dtype=np.uint8)
    else:
        # Q6_K: ql, qh uniform (codes 0..63, std 18.5, minus 32), every int8 scale 16.
        blocks = np.empty((rows, nb, 210), dtype=np.uint8)
        blocks[:, :, 0:192] = rng.integers(0, 256, size=(rows, nb, 192), dtype=np.uint8)
        blocks[:, :, 192:208] = 16
        blocks[:, :, 208:210] = np.float16(scale / (16 * 18.5)).reshape(1).view(np.uint8)
    return blocks.reshape(rows, nb * blocks.shape[2])


def matrix(name, rows, cols, scale, qtype=qtype, experts=0):
    """A weight of ggml shape [cols, rows] (numpy (rows, cols)) in the chosen type; with `experts`, that many of them
    stacked (ggml shape [cols, rows, experts])."""
    if experts:
        # Quantized row by row, so the stack is the experts' matrices one after another.
        parts = []
        for _ in range(experts):
            m = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
            if qtype == T.F32:
                parts.append(m)
            elif qtype == T.F16:
                parts.append(m.astype(np.float16))
            else:
                parts.append(gguf.quants.quantize(m, qtype))
        stack = np.stack(parts)
        w.add_tensor(name, stack, raw_dtype=None if qtype in (T.F32, T.F16) else qtype)
        return
    if a.fast and qtype in (T.Q4_K, T.Q6_K):
        w.add_tensor(name, kquant_blocks(rows, cols, scale, qtype), raw_dtype=qtype)
        return
    if a.fast and qtype in (T.Q4_0, T.Q8_0):
        # Codes uniform over their range (std 4.6 for Q4_0's 0..15 - 8, 73.9 for Q8_0's int8): scale d to match.
        nb = cols // 32
        d = np.float16(scale / (4.6 if qtype == T.Q4_0 else 73.9)).reshape(1).view(np.uint8)
        nq = 16 if qtype == T.Q4_0 else 32
        blocks = np.empty((rows, nb, 2 + nq), dtype=np.uint8)
        blocks[:, :, 0:2] = d
        blocks[:, :, 2:] = rng.integers(0, 256, size=(rows, nb, nq), dtype=np.uint8)
        w.add_tensor(name, blocks.reshape(rows, nb * (2 + nq)), raw_dtype=qtype)
        return
    m = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
    if qtype == T.F32:
        w.add_tensor(name, m)
    elif qtype == T.F16:
        w.add_tensor(name, m.astype(np.float16))
    else:
        w.add_tensor(name, gguf.quants.quantize(m, qtype), raw_dtype=qtype)


def norm(name, n):
    w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32))


hd = a.embd // a.heads
s = 1.0 / np.sqrt(a.embd)
matrix("token_embd.weight", n_vocab, a.embd, 1.0)
for i in range(a.layers):
    norm(f"blk.{i}.attn_norm.weight", a.embd)
    if a.arch == "phi3":
        # Rows of Q, then K, then V (llama.cpp's views of the fused product read them so).
        matrix(f"blk.{i}.attn_qkv.weight", a.embd + 2 * a.kv_heads * hd, a.embd, s)
    else:
        matrix(f"blk.{i}.attn_q.weight", a.embd, a.embd, s)
        matrix(f"blk.{i}.attn_k.weight", a.kv_heads * hd, a.embd, s)
        matrix(f"blk.{i}.attn_v.weight", a.kv_heads * hd, a.embd, s)
    if a.arch == "qwen2":
        for t, n in (("q", a.embd), ("k", a.kv_heads * hd), ("v", a.kv_heads * hd)):
            w.add_tensor(f"blk.{i}.attn_{t}.bias", (0.1 * rng.standard_normal(n)).astype(np.float32))
    if a.arch in ("qwen3", "qwen3moe"):
        norm(f"blk.{i}.attn_q_norm.weight", hd)
        norm(f"blk.{i}.attn_k_norm.weight", hd)
    matrix(f"blk.{i}.attn_output.weight", a.embd, a.embd, s)
    norm(f"blk.{i}.ffn_norm.weight", a.embd)
    if a.experts:
        # Router in f32 (as converted models keep it), scaled so the expert choice is not a near-tie.
        matrix(f"blk.{i}.ffn_gate_inp.weight", a.experts, a.embd, 4.0 * s, T.F32)
        matrix(f"blk.{i}.ffn_gate_exps.weight", a.ff, a.embd, s, experts=a.experts)
        matrix(f"blk.{i}.ffn_up_exps.weight", a.ff, a.embd, s, experts=a.experts)
        matrix(f"blk.{i}.ffn_down_exps.weight", a.embd, a.ff, 1.0 / np.sqrt(a.ff), experts=a.experts)
    elif a.arch == "phi3":
        # Gate rows first, then up rows (ggml_swiglu of the product takes its first half as the gate).
        matrix(f"blk.{i}.ffn_up.weight", 2 * a.ff, a.embd, s)
        matrix(f"blk.{i}.ffn_down.weight", a.embd, a.ff, 1.0 / np.sqrt(a.ff))
    else:
        matrix(f"blk.{i}.ffn_gate.weight", a.ff, a.embd, s)
        matrix(f"blk.{i}.ffn_up.weight", a.ff, a.embd, s)
        matrix(f"blk.{i}.ffn_down.weight", a.embd, a.ff, 1.0 / np.sqrt(a.ff))
norm("output_norm.weight", a.embd)
matrix("output.weight", n_vocab, a.embd, 4.0 * s, QTYPES[a.output_type or a.type])

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
moe = f", {a.experts} experts ({a.experts_used} used)" if a.experts else ""
print(f"wrote {a.out}: {a.arch}, {a.layers} layers, n_embd {a.embd}, n_vocab {n_vocab}, {a.type}{moe}")
