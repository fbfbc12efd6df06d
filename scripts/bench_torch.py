#!/usr/bin/env python3
"""PyTorch eager baseline for `just bench`: the same Llama architecture, sizes, batch and
sequence lengths as examples/bench_llama.rs, on the CPU, with random weights of the checkpoint's
shapes (throughput does not depend on the values). Prints one JSON object per measurement.

usage: bench_torch.py --config JSON  (written by examples/bench.rs: model sizes, the workload and
                                      the GEMM sizes)
       bench_torch.py --peak JSON    (one SmolLM2-shaped fine-tuning step, full or LoRA; prints the
                                      process's peak resident memory in GiB)
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h, kv, ff = c["d_model"], c["heads"], c["kv_heads"], c["d_ff"]
        self.h, self.kv, self.hd = h, kv, d // h
        self.attn_norm = nn.RMSNorm(d, eps=c["norm_eps"])
        self.q = nn.Linear(d, h * self.hd, bias=False)
        self.k = nn.Linear(d, kv * self.hd, bias=False)
        self.v = nn.Linear(d, kv * self.hd, bias=False)
        self.o = nn.Linear(h * self.hd, d, bias=False)
        self.mlp_norm = nn.RMSNorm(d, eps=c["norm_eps"])
        self.gate = nn.Linear(d, ff, bias=False)
        self.up = nn.Linear(d, ff, bias=False)
        self.down = nn.Linear(ff, d, bias=False)

    def forward(self, x, cos, sin, mask, cache=None):
        b, t, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.k(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.v(h).view(b, t, self.kv, self.hd).transpose(1, 2)
        rot = lambda y: torch.cat([-y[..., self.hd // 2:], y[..., : self.hd // 2]], -1)
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        rep = self.h // self.kv
        k = k.repeat_interleave(rep, 1)
        v = v.repeat_interleave(rep, 1)
        s = q @ k.transpose(2, 3) / math.sqrt(self.hd) + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, -1)
        x = x + self.o(a)
        h = self.mlp_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed = nn.Embedding(c["vocab_size"], c["d_model"])
        self.blocks = nn.ModuleList([Block(c) for _ in range(c["layers"])])
        self.norm = nn.RMSNorm(c["d_model"], eps=c["norm_eps"])

    def forward(self, ids, pos, mask, caches=None):
        hd = self.c["d_model"] // self.c["heads"]
        inv = self.c["rope_theta"] ** (-torch.arange(0, hd, 2).float() / hd)
        ang = pos.float()[..., None] * inv
        f = torch.cat([ang, ang], -1)[:, None]
        cos, sin = f.cos(), f.sin()
        x = self.embed(ids)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cos, sin, mask, None if caches is None else caches[i])
        return self.norm(x)

    def logits(self, h):
        return h @ self.embed.weight.T


class GptBlock(nn.Module):
    """morsd's scratch student block: LayerNorm, fused qkv (bias), GELU MLP."""

    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.h, self.hd = c["heads"], d // c["heads"]
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.up, self.down = nn.Linear(d, c["d_ff"]), nn.Linear(c["d_ff"], d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, -1)
        q, k, v = (y.view(b, t, self.h, self.hd).transpose(1, 2) for y in (q, k, v))
        s = q @ k.transpose(2, 3) / math.sqrt(self.hd) + mask
        x = x + self.proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.down(F.gelu(self.up(self.ln2(x))))


class Gpt(nn.Module):
    """morsd's scratch student (learned positions, untied head); decodes without a cache, as
    morsd does for it."""

    def __init__(self, c):
        super().__init__()
        self.tok = nn.Embedding(c["vocab_size"], c["d_model"])
        self.pos = nn.Embedding(c["max_seq_len"], c["d_model"])
        self.blocks = nn.ModuleList([GptBlock(c) for _ in range(c["layers"])])
        self.norm = nn.LayerNorm(c["d_model"])
        self.head = nn.Linear(c["d_model"], c["vocab_size"], bias=False)

    def forward(self, ids, pos, mask, caches=None):
        if caches is not None:  # no cache: re-read the whole sequence
            caches[0]["ids"] = ids = torch.cat([caches[0].get("ids", ids[:, :0]), ids], 1)
            t = ids.shape[1]
            pos, mask = torch.arange(t).expand(ids.shape[0], t), causal(ids.shape[0], t)
        x = self.tok(ids) + self.pos(pos)
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.norm(x)
        return x if caches is None else x[:, -1:]

    def logits(self, h):
        return self.head(h)


def causal(b, t):
    m = torch.full((t, t), -1e9).triu(1)
    return m.expand(b, 1, t, t)


class LoraLinear(nn.Module):
    """`base(x) + (alpha / r) · B(A(x))` with the base frozen (PEFT's LoRA, by hand)."""

    def __init__(self, base, r=8, alpha=16.0):
        super().__init__()
        self.base = base
        self.a = nn.Linear(base.in_features, r, bias=False)
        self.b = nn.Linear(r, base.out_features, bias=False)
        nn.init.zeros_(self.b.weight)
        self.scale = alpha / r

    def forward(self, x):
        return self.base(x) + self.b(self.a(x)) * self.scale


def peak(spec):
    """One AdamW step of a SmolLM2-shaped model at batch × seq; prints the peak resident memory
    (VmHWM, as morsd's side reads it) in GiB. Not ru_maxrss: Linux carries that across execve, so
    a process the bench forks would report at least the bench's own resident size at the fork."""
    torch.manual_seed(0)
    torch.set_num_threads(spec.get("threads", 2))
    c = spec["config"]
    model = Llama(c)
    params = model.parameters()
    if spec["mode"] == "lora":
        for p in model.parameters():
            p.requires_grad_(False)
        for blk in model.blocks:
            blk.q, blk.v = LoraLinear(blk.q), LoraLinear(blk.v)
        params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    B, T = spec["batch"], spec["seq"]
    ids = torch.randint(0, c["vocab_size"], (B, T + 1))
    h = model(ids[:, :-1], torch.arange(T).expand(B, T), causal(B, T))
    loss = F.cross_entropy(model.logits(h.reshape(B * T, -1)), ids[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    with open("/proc/self/status") as f:
        hwm_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    print(f"{hwm_kb / 1024 / 1024:.3f}")


def gemm(n, reps=None):
    """GFLOP/s of an f32 `torch.mm` of two n × n matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    reps = reps or max(10, min(2000, int(4e11 / (2 * n**3))))
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def t5_rows(m, sync):
    """The T5 row: transformers' T5ForConditionalGeneration on the same shapes (random init):
    the encoder reads `encoder` tokens (+ </s>), the decoder predicts `seq`; greedy decoding with
    generate's KV cache (cross-attention keys and values computed once)."""
    import transformers
    c = m["config"]
    cfg = transformers.T5Config(
        vocab_size=c["vocab_size"], d_model=c["d_model"], d_kv=c["d_kv"], d_ff=c["d_ff"],
        num_layers=c["layers"], num_decoder_layers=c["layers"], num_heads=c["heads"],
        relative_attention_num_buckets=c["buckets"], relative_attention_max_distance=c["max_distance"],
        feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    model = transformers.T5ForConditionalGeneration(cfg)
    model.config._attn_implementation = "eager"
    B, T, E = m["batch"], m["seq"], m["encoder"]
    enc = torch.randint(2, c["vocab_size"], (B, E + 1))
    labels = torch.randint(2, c["vocab_size"], (B, T))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for i in range(m["train_steps"] + 1):
        t0 = time.perf_counter()
        loss = model(input_ids=enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if i > 0:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"model": m["name"], "what": "train step", "tokens_per_s": B * T / (sum(times) / len(times))}), flush=True)
    model.eval()
    with torch.no_grad():
        dec = torch.cat([torch.zeros(B, 1, dtype=torch.long), labels[:, :-1]], 1)
        times = []
        for i in range(m["score_reps"] + 1):
            t0 = time.perf_counter()
            lp = model(input_ids=enc, decoder_input_ids=dec).logits.log_softmax(-1)
            _ = lp.gather(2, labels[:, :, None]).sum().item()
            if i > 0:
                times.append(time.perf_counter() - t0)
        print(json.dumps({"model": m["name"], "what": "RD scoring", "tokens_per_s": B * T / (sum(times) / len(times))}), flush=True)
        P, N = m["prompt"], m["new_tokens"]
        t0 = time.perf_counter()
        model.generate(input_ids=enc[:, :P], max_new_tokens=N, min_new_tokens=N, do_sample=False)
        sync()
        dt = time.perf_counter() - t0
        print(json.dumps({"model": m["name"], "what": "greedy decoding", "tokens_per_s": B * N / dt}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config")
    ap.add_argument("--peak")
    a = ap.parse_args()
    if a.peak:
        return peak(json.loads(a.peak))
    cfg = json.loads(a.config)
    torch.manual_seed(0)
    torch.set_num_threads(cfg.get("threads", 2))
    dev = cfg.get("device", "cpu")
    torch.set_default_device(dev)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    for n in cfg.get("gemm", []):
        print(json.dumps({"what": "gemm", "n": n, "gflops": gemm(n)}), flush=True)
    for m in cfg["models"]:
        if m.get("skip"):
            continue
        if m.get("arch") == "t5":
            t5_rows(m, sync)
            continue
        c = m["config"]
        model = Gpt(c) if m.get("arch") == "gpt" else Llama(c)
        B, T = m["batch"], m["seq"]
        ids = torch.randint(0, c["vocab_size"], (B, T + 1))
        pos = torch.arange(T).expand(B, T)
        mask = causal(B, T)
        # (a) train step: forward, loss on every position, backward, AdamW.
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        times = []
        for i in range(m["train_steps"] + 1):
            t0 = time.perf_counter()
            h = model(ids[:, :-1], pos, mask)
            loss = F.cross_entropy(model.logits(h.reshape(B * T, -1)), ids[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sync()
            if i > 0:
                times.append(time.perf_counter() - t0)
        print(json.dumps({"model": m["name"], "what": "train step", "tokens_per_s": B * T / (sum(times) / len(times))}), flush=True)
        # (b) RD scoring: forward only, log-softmax at every position.
        with torch.no_grad():
            times = []
            for i in range(m["score_reps"] + 1):
                t0 = time.perf_counter()
                h = model(ids[:, :-1], pos, mask)
                lp = model.logits(h.reshape(B * T, -1)).log_softmax(-1)
                _ = lp.gather(1, ids[:, 1:].reshape(-1, 1)).sum().item()
                if i > 0:
                    times.append(time.perf_counter() - t0)
            print(json.dumps({"model": m["name"], "what": "RD scoring", "tokens_per_s": B * T / (sum(times) / len(times))}), flush=True)
            # (c) greedy decoding with a KV cache.
            P, N = m["prompt"], m["new_tokens"]
            caches = [dict() for _ in model.blocks]
            t0 = time.perf_counter()
            h = model(ids[:, :P], torch.arange(P).expand(B, P), causal(B, P), caches)
            nxt = model.logits(h[:, -1]).argmax(-1)
            for s in range(N - 1):
                p = torch.full((B, 1), P + s)
                h = model(nxt[:, None], p, torch.zeros(B, 1, 1, P + s + 1), caches)
                nxt = model.logits(h[:, -1]).argmax(-1)
            sync()
            dt = time.perf_counter() - t0
            print(json.dumps({"model": m["name"], "what": "greedy decoding", "tokens_per_s": B * N / dt}), flush=True)


if __name__ == "__main__":
    main()
