#!/usr/bin/env python3
"""Reference check of morsd's Llama student against llama.cpp (llama-cpp-python), same GGUF.

For fixed prompts: (1) the token ids of morsd's GGUF-built tokenizer equal llama.cpp's;
(2) next-token logits at every prompt position: max |difference|, mean |difference| and top-1
agreement (goal >= 98 % over >= 200 positions); (3) greedy continuations: how many leading
tokens match. Writes a Markdown report and exits 1 when a goal is missed.

usage: check_model.py --morsd BIN --gguf FILE [--out REPORT.md] [--new-tokens N]
Run by `just check-model` and by tests/llama_reference.rs (with the llama.cpp venv's python).
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
from llama_cpp import Llama

PROMPTS = [
    "Q: Ann has 3 apples. She buys 4 more apples and gives 2 to her brother. How many apples does she have now?\nA: Let's think step by step.",
    "The quick brown fox jumps over the lazy dog. Rationale selection keeps the few teacher explanations that make the gold answer easiest for the student to predict.",
    "<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n<|im_start|>assistant\n",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\nprint(fibonacci(10))",
    "Question: A shop sold 125 pencils on Monday and twice as many on Tuesday. On Wednesday it sold 37 fewer than on Tuesday. How many pencils did it sell in the three days?\nAnswer: On Tuesday it sold 2 * 125 = 250 pencils.",
    "Lisa flips a coin that is heads up. Mark does not flip it. Tom flips it. Is the coin still heads up? Note that flip here means reverse.",
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--morsd", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out")
    ap.add_argument("--new-tokens", type=int, default=16)
    a = ap.parse_args()

    # 1. morsd: token ids, prompt logits, greedy continuation.
    dump = pathlib.Path(tempfile.mkdtemp())
    cmd = [a.morsd, "generate", "--student", a.gguf, "--max-new-tokens", str(a.new_tokens), "--dump", str(dump)]
    for p in PROMPTS:
        cmd += ["--prompt", p]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    ours = json.loads((dump / "tokens.json").read_text())

    # 2. llama.cpp on the same file, all logits kept.
    llm = Llama(model_path=a.gguf, n_ctx=1024, logits_all=True, verbose=False, n_threads=2, seed=0)
    vocab = llm.n_vocab()
    rows = []
    tok_ok = True
    diffs, refs, agree, total = [], [], 0, 0
    greedy_match = []
    for i, p in enumerate(PROMPTS):
        ids = llm.tokenize(p.encode(), add_bos=False, special=True)
        same_ids = ids == ours[i]["ids"]
        tok_ok &= same_ids
        llm.reset()
        llm.eval(ids)
        ref = np.array(llm.scores[: len(ids)], dtype=np.float32)
        got = np.fromfile(dump / f"logits-{i}.f32", dtype="<f4").reshape(len(ours[i]["ids"]), vocab)
        n = min(len(ids), got.shape[0])
        d = np.abs(ref[:n] - got[:n])
        diffs.append(d)
        refs.append(ref[:n])
        a1 = int((ref[:n].argmax(1) == got[:n].argmax(1)).sum())
        agree += a1
        total += n
        # Greedy continuation by llama.cpp (argmax of its own logits).
        cont = []
        nxt = int(ref[len(ids) - 1].argmax())
        for _ in range(a.new_tokens):
            if nxt == llm.token_eos():
                break
            cont.append(nxt)
            llm.eval([nxt])
            nxt = int(np.array(llm.scores[llm.n_tokens - 1]).argmax())
        mine = ours[i]["continuation_ids"]
        k = 0
        while k < min(len(cont), len(mine)) and cont[k] == mine[k]:
            k += 1
        greedy_match.append((k, len(cont), len(mine)))
        rows.append(
            f"| {i} | {n} | {'yes' if same_ids else 'NO'} | {d.max():.4f} | {d.mean():.5f} | {a1}/{n} | {k}/{max(len(cont), len(mine))} | {json.dumps(llm.detokenize(cont).decode(errors='replace'))[:60]} |"
        )
    d = np.concatenate([x.reshape(-1) for x in diffs])
    top1 = agree / total
    report = [
        "# morsd's Llama student vs llama.cpp (same GGUF)",
        "",
        f"Model: `{pathlib.Path(a.gguf).name}`. Produced by `scripts/check_model.py` (`just check-model`).",
        "",
        f"- positions compared: **{total}**; top-1 agreement: **{top1 * 100:.2f} %** (goal ≥ 98 %)",
        f"- next-token logits: max |Δ| **{d.max():.4f}**, mean |Δ| {d.mean():.5f} (for scale: llama.cpp's logits have std {float(np.std(np.concatenate(refs))):.2f})",
        f"- tokenizer: {'identical ids on every prompt' if tok_ok else 'IDS DIFFER on some prompt'}",
        f"- greedy continuations: leading tokens equal per prompt: {', '.join(f'{k}/{max(c, m)}' for k, c, m in greedy_match)}",
        "",
        "| prompt | positions | same ids | max abs Δ | mean abs Δ | top-1 | greedy match | llama.cpp continuation |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "The residual: morsd dequantises every Q4_1 weight to f32 once and computes in f32; llama.cpp",
        "keeps the weights in Q4_1 and quantises the activations to 8 bits (Q8_1) for its integer dot",
        "products, accumulating in a different order. Both read the same quantised weights, so the",
        "differences are activation rounding, not a different model; a top-1 flip needs two nearly",
        "tied candidates.",
    ]
    text = "\n".join(report) + "\n"
    if a.out:
        pathlib.Path(a.out).write_text(text)
    print(text)
    return 0 if (tok_ok and top1 >= 0.98 and total >= 200) else 1


if __name__ == "__main__":
    sys.exit(main())
