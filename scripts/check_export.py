#!/usr/bin/env python3
"""transformers' and PEFT's view of a morsd export, against morsd's own logits.

For each prompt morsd dumped (`morsd generate --student ENTRY --dump DIR`: DIR/tokens.json
with the prompt's ids and morsd's greedy continuation, DIR/logits-<i>.f32 with morsd's
next-token logits [positions, vocab]): (1) the exported tokenizer's ids for the prompt text
(AutoTokenizer); (2) the model's logits on morsd's prompt ids, max |difference| from morsd's;
(3) the greedy continuation (generate, do_sample=False) of those ids, up to --new-tokens.
All prompts are also run as one left-padded batch, whose real positions must give the same
logits as the single prompts.

Eager attention throughout (Gemma 2's soft-capped scores have no SDPA path).

An encoder–decoder (T5: `config.is_encoder_decoder`) is loaded with AutoModelForSeq2SeqLM; its
dump names `encoder_ids` (the prompt and `</s>`) and `decoder_ids` (the start token and
morsd's continuation), and the logits compared are the decoder's over `decoder_ids`. Its batch
is right-padded on both sides, with attention masks.

  --kind hf    AutoModelForCausalLM.from_pretrained(DIR)
  --kind peft  PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), DIR)

usage: check_export.py --kind hf|peft --dir EXPORT [--base BASE] --dump DUMP [--new-tokens N]
                       [--no-cache]
Prints one JSON object: {"prompts": [{"tokenizer_ids", "max_abs_diff", "max_abs_logit",
"continuation_ids", "batch_max_abs_diff"}], "eos": ID}.
Run by tests/export.rs and `just check-export` with the torch venv's python
(scripts/setup-torch.sh installs torch, transformers and peft).
"""
import argparse
import json
import pathlib
import sys

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer


def row(tok, p, logits, ours, gen, eos):
    """One prompt's figures: the tokenizer's ids, the logit difference, the continuation (cut
    before end of sequence)."""
    if eos in gen:
        gen = gen[: gen.index(eos)]
    return {
        "tokenizer_ids": tok(p["prompt"], add_special_tokens=False).input_ids if tok else None,
        "max_abs_diff": float(np.abs(logits - ours).max()),
        "max_abs_logit": float(np.abs(ours).max()),
        "continuation_ids": gen,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=["hf", "peft"], required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--base")
    ap.add_argument("--dump", required=True)
    ap.add_argument("--new-tokens", type=int, default=16)
    # transformers' cached Phi-3 generate recomputes the sequence where a longrope model first
    # passes its original context, with a one-row mask (bidirectional there): --no-cache takes
    # the model's own greedy continuation, a full forward per token.
    ap.add_argument("--no-cache", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    seq2seq = AutoConfig.from_pretrained(a.dir if a.kind == "hf" else a.base).is_encoder_decoder
    auto = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    if a.kind == "hf":
        model = auto.from_pretrained(a.dir, torch_dtype=torch.float32, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(a.dir)
    else:
        from peft import PeftModel

        base = auto.from_pretrained(a.base, torch_dtype=torch.float32, attn_implementation="eager")
        model = PeftModel.from_pretrained(base, a.dir)
        tok = None
    model.eval()
    if seq2seq:
        print(json.dumps(seq2seq_check(model, tok, pathlib.Path(a.dump), a.new_tokens)))
        return 0
    eos = model.config.eos_token_id
    dump = pathlib.Path(a.dump)
    prompts = json.loads((dump / "tokens.json").read_text())
    vocab = model.config.vocab_size
    out = []
    singles = []
    with torch.no_grad():
        for i, p in enumerate(prompts):
            ids = torch.tensor([p["ids"]])
            ours = np.fromfile(dump / f"logits-{i}.f32", dtype="<f4").reshape(len(p["ids"]), vocab)
            logits = model(input_ids=ids).logits[0].float().numpy()
            singles.append(logits)
            gen = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=a.new_tokens,
                do_sample=False,
                use_cache=not a.no_cache,
                eos_token_id=eos,
                pad_token_id=model.config.pad_token_id if model.config.pad_token_id is not None else eos,
            )[0, ids.shape[1]:].tolist()
            out.append(row(tok, p, logits, ours, gen, eos))
        # One left-padded batch: the real positions give the single prompts' logits.
        longest = max(len(p["ids"]) for p in prompts)
        pad = model.config.pad_token_id if model.config.pad_token_id is not None else eos
        ids = torch.tensor([[pad] * (longest - len(p["ids"])) + p["ids"] for p in prompts])
        mask = torch.tensor([[0] * (longest - len(p["ids"])) + [1] * len(p["ids"]) for p in prompts])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        batch = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float().numpy()
        for i, p in enumerate(prompts):
            n = len(p["ids"])
            out[i]["batch_max_abs_diff"] = float(np.abs(batch[i, longest - n:] - singles[i]).max())
    print(json.dumps({"prompts": out, "eos": eos}))
    return 0


def seq2seq_check(model, tok, dump, new_tokens):
    """The encoder–decoder's view: decoder logits over morsd's decoder ids, with the prompt
    (and `</s>`) as the encoder's input; greedy continuations; one right-padded batch."""
    eos = model.config.eos_token_id
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else eos
    vocab = model.config.vocab_size
    prompts = json.loads((dump / "tokens.json").read_text())
    out, singles = [], []
    with torch.no_grad():
        for i, p in enumerate(prompts):
            enc = torch.tensor([p["encoder_ids"]])
            dec = torch.tensor([p["decoder_ids"]])
            ours = np.fromfile(dump / f"logits-{i}.f32", dtype="<f4").reshape(len(p["decoder_ids"]), vocab)
            logits = model(input_ids=enc, decoder_input_ids=dec).logits[0].float().numpy()
            singles.append(logits)
            gen = model.generate(
                input_ids=enc,
                attention_mask=torch.ones_like(enc),
                max_new_tokens=new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
            )[0, 1:].tolist()
            out.append(row(tok, p, logits, ours, gen, eos))
        def padded(rows):
            n = max(len(r) for r in rows)
            ids = torch.tensor([r + [pad] * (n - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (n - len(r)) for r in rows])
            return ids, mask
        enc, enc_mask = padded([p["encoder_ids"] for p in prompts])
        dec, dec_mask = padded([p["decoder_ids"] for p in prompts])
        batch = model(input_ids=enc, attention_mask=enc_mask, decoder_input_ids=dec,
                      decoder_attention_mask=dec_mask).logits.float().numpy()
        for i, p in enumerate(prompts):
            n = len(p["decoder_ids"])
            out[i]["batch_max_abs_diff"] = float(np.abs(batch[i, :n] - singles[i]).max())
    return {"prompts": out, "eos": eos}


if __name__ == "__main__":
    sys.exit(main())
