#!/usr/bin/env python3
"""Independent pure-Python reference forward for a Hugging Face Llama/Qwen2 checkpoint.

Follows transformers' LlamaForCausalLM semantics (eager attention, float64 Python arithmetic).
Standard library only. Written from the transformers definitions, not from the C# engine.
Usage: llama_ref.py DIR --tokens 1,2,3 [--out logits.json]
       llama_ref.py DIR --dump TENSOR_NAME      (prints the decoded tensor as a flat JSON list)
"""
import argparse
import json
import math
import os
import struct


# ---------------------------------------------------------------- safetensors reading
def _decode(raw, dtype):
    if dtype == "F32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw))
    if dtype == "F16":
        return list(struct.unpack("<%de" % (len(raw) // 2), raw))
    if dtype == "BF16":
        hs = struct.unpack("<%dH" % (len(raw) // 2), raw)
        return list(struct.unpack("<%df" % len(hs), struct.pack("<%dI" % len(hs), *[h << 16 for h in hs])))
    raise ValueError("unsupported dtype " + dtype)


def read_safetensors(path):
    out = {}
    with open(path, "rb") as f:
        data = f.read()
    (hlen,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = (info["shape"], _decode(data[base + b:base + e], info["dtype"]))
    return out


def load_tensors(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        t = {}
        for fname in sorted(set(wm.values())):
            t.update(read_safetensors(os.path.join(d, fname)))
        return t
    return read_safetensors(os.path.join(d, "model.safetensors"))


# ---------------------------------------------------------------- math helpers
def matrix(shape_vals):
    shape, vals = shape_vals
    rows, cols = shape
    return [vals[r * cols:(r + 1) * cols] for r in range(rows)]


def linear(x, w, b=None):  # w: [out][in] (nn.Linear: y = x W^T + b)
    y = [sum(wi * xi for wi, xi in zip(row, x)) for row in w]
    if b is not None:
        y = [yi + bi for yi, bi in zip(y, b)]
    return y


def rmsnorm(x, w, eps):
    inv = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [wi * (v * inv) for v, wi in zip(x, w)]


def silu(v):
    return v / (1.0 + math.exp(-v))


def inv_freqs(cfg, hd):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = [1.0 / (theta ** (i / hd)) for i in range(0, hd, 2)]
    rs = cfg.get("rope_scaling")
    if rs:
        rtype = rs.get("rope_type", rs.get("type"))
        if rtype == "llama3":  # transformers _compute_llama3_parameters
            factor = rs["factor"]
            low = rs["low_freq_factor"]
            high = rs["high_freq_factor"]
            orig = rs["original_max_position_embeddings"]
            low_wl = orig / low
            high_wl = orig / high
            out = []
            for f in inv:
                wl = 2 * math.pi / f
                if wl < high_wl:
                    out.append(f)
                elif wl > low_wl:
                    out.append(f / factor)
                else:
                    smooth = (orig / wl - low) / (high - low)
                    out.append((1 - smooth) * f / factor + smooth * f)
            inv = out
        elif rtype not in (None, "default"):
            raise SystemExit("unsupported rope_scaling " + str(rtype))
    return inv


def rope(v, pos, inv):  # rotate-half on one head vector
    half = len(v) // 2
    out = [0.0] * len(v)
    for i in range(half):
        a = pos * inv[i]
        c, s = math.cos(a), math.sin(a)
        x1, x2 = v[i], v[i + half]
        out[i] = x1 * c - x2 * s          # q*cos + (-x2)*sin
        out[i + half] = x2 * c + x1 * s   # q*cos + x1*sin
    return out


# ---------------------------------------------------------------- forward
def forward(d, tokens):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    T = load_tensors(d)
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", H)
    dm = cfg["hidden_size"]
    hd = cfg.get("head_dim") or dm // H
    eps = cfg.get("rms_norm_eps", 1e-6)
    L = cfg["num_hidden_layers"]
    group = H // Hkv
    inv = inv_freqs(cfg, hd)
    scale = 1.0 / math.sqrt(hd)

    def vec(name):
        return T[name][1] if name in T else None

    emb = matrix(T["model.embed_tokens.weight"])
    xs = [list(emb[t]) for t in tokens]
    n = len(tokens)
    for l in range(L):
        p = "model.layers.%d." % l
        wq, wk, wv, wo = (matrix(T[p + "self_attn.%s_proj.weight" % k]) for k in "qkvo")
        bq, bk, bv = (vec(p + "self_attn.%s_proj.bias" % k) for k in "qkv")
        ks, vs, qs = [], [], []
        for pos, x in enumerate(xs):
            h = rmsnorm(x, vec(p + "input_layernorm.weight"), eps)
            q, k, v = linear(h, wq, bq), linear(h, wk, bk), linear(h, wv, bv)
            qs.append([rope(q[j * hd:(j + 1) * hd], pos, inv) for j in range(H)])
            ks.append([rope(k[j * hd:(j + 1) * hd], pos, inv) for j in range(Hkv)])
            vs.append([v[j * hd:(j + 1) * hd] for j in range(Hkv)])
        new = []
        for i in range(n):
            attn = []
            for h_ in range(H):
                kv = h_ // group
                sc = [sum(a * b for a, b in zip(qs[i][h_], ks[j][kv])) * scale for j in range(i + 1)]
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                o = [0.0] * hd
                for j in range(i + 1):
                    w = e[j] / z
                    vj = vs[j][kv]
                    for c in range(hd):
                        o[c] += w * vj[c]
                attn.extend(o)
            x = [a + b for a, b in zip(xs[i], linear(attn, wo))]
            h2 = rmsnorm(x, vec(p + "post_attention_layernorm.weight"), eps)
            g = linear(h2, matrix(T[p + "mlp.gate_proj.weight"]))
            u = linear(h2, matrix(T[p + "mlp.up_proj.weight"]))
            mlp = linear([silu(a) * b for a, b in zip(g, u)], matrix(T[p + "mlp.down_proj.weight"]))
            new.append([a + b for a, b in zip(x, mlp)])
        xs = new
    head = matrix(T["lm_head.weight"]) if "lm_head.weight" in T else emb
    return [linear(rmsnorm(x, vec("model.norm.weight"), eps), head) for x in xs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--tokens")
    ap.add_argument("--out")
    ap.add_argument("--dump")
    a = ap.parse_args()
    if a.dump:
        result = load_tensors(a.dir)[a.dump][1]
    else:
        if not a.tokens:
            raise SystemExit("--tokens required")
        toks = [int(t) for t in a.tokens.replace(" ", ",").split(",") if t]
        result = {"logits": forward(a.dir, toks)}
    text = json.dumps(result)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
