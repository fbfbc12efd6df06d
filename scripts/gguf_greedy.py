#!/usr/bin/env python3
"""llama.cpp's view of a GGUF file: greedy continuations and the tensor table.

For each prompt of the request: (1) llama.cpp's own tokenisation of its text (special tokens
parsed; a BOS prepended when the file's tokenizer says add_bos_token); (2) the greedy
continuation (temperature 0, top-k 1) of exactly the given token ids (nothing prepended), up
to --new-tokens tokens, stopping before the end-of-sequence token. Also the file's tensors and
scalar metadata as the `gguf` package (llama.cpp's Python reader) reads them: name, ggml type,
shape in GGUF order (innermost first), as llama.cpp's converter writes them. With --base, per
tensor of the same name, max |file - base| / max |base| over the dequantised values: the data
is laid out as the base's (q/k rows permuted as the converter permutes them).

usage: gguf_greedy.py --gguf FILE --request REQUEST.json [--new-tokens N] [--base FILE] [--n-ctx N]
REQUEST.json: [{"text": "...", "ids": [1, 2, ...]}, ...]. Prints one JSON object:
{"prompts": [{"ids": [...], "continuation_ids": [...]}], "eos": ID,
 "tensors": [[name, type, [dims]]], "metadata": {key: scalar or array length},
 "base_diff": {name: relative max difference}}
Run by tests/export_gguf.rs with the llama.cpp venv's python (scripts/setup-llama.sh).
"""
import argparse
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFValueType
from gguf.quants import dequantize
from llama_cpp import Llama


def metadata(reader):
    """Scalar fields as values, arrays as their lengths."""
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == GGUFValueType.ARRAY:
            out[key] = len(field.data)
        else:
            out[key] = field.contents()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--request", required=True)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--base")
    # llama.cpp's context; a Phi-3 longrope file runs its short factors only within the
    # original context (llama.cpp picks the factor set by its context, not the sequence).
    ap.add_argument("--n-ctx", type=int, default=512)
    a = ap.parse_args()
    with open(a.request) as f:
        request = json.load(f)

    # 1. The file as llama.cpp's reader sees it.
    reader = GGUFReader(a.gguf)
    tensors = [[t.name, t.tensor_type.name, [int(x) for x in t.shape]] for t in reader.tensors]
    base_diff = {}
    if a.base:
        base = {t.name: t for t in GGUFReader(a.base).tensors}
        for t in reader.tensors:
            if t.name in base:
                x = dequantize(t.data, t.tensor_type).astype(np.float64)
                b = base[t.name]
                y = dequantize(b.data, b.tensor_type).astype(np.float64)
                base_diff[t.name] = float(np.abs(x - y).max() / max(np.abs(y).max(), 1e-30)) if x.shape == y.shape else None

    # 2. llama.cpp: tokenisation and greedy continuations.
    # The KV cache in f32 (GGML_TYPE_F32 = 0; llama.cpp's default is f16), so that a greedy
    # step decided by a small logit margin is decided as morsd's f32 decoding decides it.
    llm = Llama(model_path=a.gguf, n_ctx=a.n_ctx, n_threads=1, logits_all=False, verbose=bool(os.environ.get("MORSD_LLAMA_VERBOSE")), seed=0, type_k=0, type_v=0)
    eos = llm.token_eos()
    prompts = []
    for p in request:
        ids = llm.tokenize(p["text"].encode(), add_bos=True, special=True)
        cont = []
        llm.reset()
        for t in llm.generate(p["ids"], temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
            if t == eos or len(cont) == a.new_tokens:
                break
            cont.append(int(t))
        prompts.append({"ids": ids, "continuation_ids": cont})
    json.dump({"prompts": prompts, "eos": eos, "tensors": tensors, "metadata": metadata(reader), "base_diff": base_diff}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
