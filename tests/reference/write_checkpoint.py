#!/usr/bin/env python3
"""Write a tiny random Hugging Face-layout Llama/Qwen2 checkpoint (config.json + safetensors).

Standard library only (struct + json + random). Independent of the C# engine.
Usage: write_checkpoint.py OUTDIR --seed S [--dtype F32|F16|BF16] [--tie] [--bias]
       [--llama3-scaling] [--kv-heads K] [--shards N] [--model-type llama|qwen2]
"""
import argparse
import json
import os
import random
import struct

VOCAB, HIDDEN, INTER, LAYERS, HEADS, HEAD_DIM = 50, 32, 64, 2, 4, 8


def f32_to_bf16_bits(x):
    (u,) = struct.unpack("<I", struct.pack("<f", x))
    if (u & 0x7F800000) == 0x7F800000 and (u & 0x007FFFFF):  # NaN
        return (u >> 16) | 0x40
    lsb = (u >> 16) & 1
    u = (u + 0x7FFF + lsb) & 0xFFFFFFFF  # round to nearest, ties to even
    return u >> 16


def encode(values, dtype):
    n = len(values)
    if dtype == "F32":
        return struct.pack("<%df" % n, *values)
    if dtype == "F16":
        return struct.pack("<%de" % n, *values)
    if dtype == "BF16":
        return struct.pack("<%dH" % n, *[f32_to_bf16_bits(v) for v in values])
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, shape, flat float list) in order."""
    header = {}
    blobs = []
    off = 0
    for name, shape, vals in tensors:
        b = encode(vals, dtype)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def make_tensors(rng, kv_heads, tie, bias):
    def normal(shape, std):
        n = 1
        for s in shape:
            n *= s
        return (shape, [rng.gauss(0.0, std) for _ in range(n)])

    def norm(n):
        return ([n], [1.0 + rng.gauss(0.0, 0.1) for _ in range(n)])

    q_out, kv_out = HEADS * HEAD_DIM, kv_heads * HEAD_DIM
    t = []
    t.append(("model.embed_tokens.weight",) + normal([VOCAB, HIDDEN], 0.3))
    for i in range(LAYERS):
        p = "model.layers.%d." % i
        t.append((p + "input_layernorm.weight",) + norm(HIDDEN))
        t.append((p + "self_attn.q_proj.weight",) + normal([q_out, HIDDEN], 0.2))
        t.append((p + "self_attn.k_proj.weight",) + normal([kv_out, HIDDEN], 0.2))
        t.append((p + "self_attn.v_proj.weight",) + normal([kv_out, HIDDEN], 0.2))
        if bias:
            t.append((p + "self_attn.q_proj.bias",) + normal([q_out], 0.1))
            t.append((p + "self_attn.k_proj.bias",) + normal([kv_out], 0.1))
            t.append((p + "self_attn.v_proj.bias",) + normal([kv_out], 0.1))
        t.append((p + "self_attn.o_proj.weight",) + normal([HIDDEN, q_out], 0.2))
        t.append((p + "post_attention_layernorm.weight",) + norm(HIDDEN))
        t.append((p + "mlp.gate_proj.weight",) + normal([INTER, HIDDEN], 0.2))
        t.append((p + "mlp.up_proj.weight",) + normal([INTER, HIDDEN], 0.2))
        t.append((p + "mlp.down_proj.weight",) + normal([HIDDEN, INTER], 0.15))
    t.append(("model.norm.weight",) + norm(HIDDEN))
    if not tie:
        t.append(("lm_head.weight",) + normal([VOCAB, HIDDEN], 0.3))
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--dtype", default="F32", choices=["F32", "F16", "BF16"])
    ap.add_argument("--tie", action="store_true")
    ap.add_argument("--bias", action="store_true")
    ap.add_argument("--llama3-scaling", action="store_true")
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--model-type", default="llama", choices=["llama", "qwen2"])
    a = ap.parse_args()
    if HEADS % a.kv_heads:
        raise SystemExit("num_attention_heads must be divisible by --kv-heads")
    bias = a.bias or a.model_type == "qwen2"
    os.makedirs(a.outdir, exist_ok=True)

    cfg = {
        "architectures": ["Qwen2ForCausalLM" if a.model_type == "qwen2" else "LlamaForCausalLM"],
        "model_type": a.model_type,
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": a.kv_heads,
        "head_dim": HEAD_DIM,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": a.tie,
        "max_position_embeddings": 4096,
        "hidden_act": "silu",
        "torch_dtype": {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[a.dtype],
    }
    if a.model_type == "llama":
        cfg["attention_bias"] = bias
    if a.llama3_scaling:
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)

    tensors = make_tensors(random.Random(a.seed), a.kv_heads, a.tie, bias)
    if a.shards <= 1:
        write_safetensors(os.path.join(a.outdir, "model.safetensors"), tensors, a.dtype)
        return
    n = a.shards
    per = (len(tensors) + n - 1) // n
    weight_map = {}
    for s in range(n):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, n)
        part = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(a.outdir, fname), part, a.dtype)
        for name, _, _ in part:
            weight_map[name] = fname
    with open(os.path.join(a.outdir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)


if __name__ == "__main__":
    main()
