#!/usr/bin/env python3
"""Write a small random-weight GGUF of another llama-family architecture (qwen2: q/k/v biases; qwen3: per-head
q/k RMS norms), to see which ops those graphs contain and whether GGVK0 runs them all (make_tiny_llama.py's
writer with the architecture's extra tensors).

    python3 scripts/make_tiny_arch.py OUT.gguf --arch qwen2|qwen3 --type q4_0|q8_0|f16|f32 [--seed N]

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
p.add_argument("--type", default="q4_0", choices=["q4_0", "q8_0", "f16", "f32"])
p.add_argument("--seed", type=int, default=1234)
p.add_argument("--arch", default="qwen3", choices=["qwen2", "qwen3"])
p.add_argument("--layers", type=int, default=2)
p.add_argument("--embd", type=int, default=256)
p.add_argument("--ff", type=int, default=512)
p.add_argument("--heads", type=int, default=8)
p.add_argument("--kv-heads", type=int, default=4)
p.add_argument("--ctx", type=int, default=512)
a = p.parse_args()
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
scores = [0.0, 0.0, 0.0] + [-1000.0] * 256 + [-float(i) for i in range(len(pieces) - 259)]
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
w.add_file_type({"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}[a.type])
w.add_tokenizer_model("llama")
w.add_token_list(pieces)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)
w.add_add_bos_token(True)
w.add_add_eos_token(False)

qtype = {"q4_0": T.Q4_0, "q8_0": T.Q8_0, "f16": T.F16, "f32": T.F32}[a.type]


def matrix(name, rows, cols, scale):
    """A weight of ggml shape [cols, rows] (numpy (rows, cols)) in the chosen type."""
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
    matrix(f"blk.{i}.attn_q.weight", a.embd, a.embd, s)
    matrix(f"blk.{i}.attn_k.weight", a.kv_heads * hd, a.embd, s)
    matrix(f"blk.{i}.attn_v.weight", a.kv_heads * hd, a.embd, s)
    matrix(f"blk.{i}.attn_output.weight", a.embd, a.embd, s)
    if a.arch == "qwen2":
        for t, n in (("q", a.embd), ("k", a.kv_heads * hd), ("v", a.kv_heads * hd)):
            w.add_tensor(f"blk.{i}.attn_{t}.bias", (0.1 * rng.standard_normal(n)).astype(np.float32))
    if a.arch == "qwen3":
        norm(f"blk.{i}.attn_q_norm.weight", hd)
        norm(f"blk.{i}.attn_k_norm.weight", hd)
    norm(f"blk.{i}.ffn_norm.weight", a.embd)
    matrix(f"blk.{i}.ffn_gate.weight", a.ff, a.embd, s)
    matrix(f"blk.{i}.ffn_up.weight", a.ff, a.embd, s)
    matrix(f"blk.{i}.ffn_down.weight", a.embd, a.ff, 1.0 / np.sqrt(a.ff))
norm("output_norm.weight", a.embd)
matrix("output.weight", n_vocab, a.embd, 4.0 * s)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
print(f"wrote {a.out}: {a.arch}, {a.layers} layers, n_embd {a.embd}, n_vocab {n_vocab}, {a.type}")
