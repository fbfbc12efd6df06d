#!/usr/bin/env python3
"""Tiny random checkpoints of each model family morsd loads, with Hugging Face reference outputs.

For every family (llama, llama3, qwen2, qwen3, mistral, gemma2, gemma3, phi3, gpt2, flan-t5, t5)
this writes one folder with a tiny
checkpoint built from a fixed seed: config.json + model.safetensors (transformers'
save_pretrained), a tokenizer.json trained here on a built-in corpus of arithmetic word problems
(+ tokenizer_config.json so AutoTokenizer loads the folder), a LoRA adapter (PEFT's
save_pretrained, in lora/), and reference.json: what transformers/PEFT compute on that
checkpoint — tokenizer ids, logits (single prompts and a padded batch), greedy continuations,
rationale-difficulty NLLs, and one LoRA step's loss and gradients. The Rust tests compare morsd
against these files without Python; `just check-families` regenerates them into a temp dir and
runs the comparison live.

Everything is float32 on the CPU (one thread, deterministic algorithms, eager attention),
seeded per family, so a rerun gives byte-identical files: the script re-executes itself with
PYTHONHASHSEED=0 and canonicalises the (nondeterministic) Unigram trainer's scores.

usage: make_family_fixtures.py [--out DIR] [--family NAME ...] | --tokenizers DIR
  (default DIR = tests/fixtures/families, default: all families; --tokenizers DIR writes only the
  SentencePiece-style tokenizers, llama-spm and gemma-spm, that tests/export.rs swaps into a
  fixture, as tests/fixtures/tokenizers)
Run with the torch venv's python (scripts/setup-torch.sh).

reference.json (compact JSON, floats rounded to 6 significant digits):
  common   family, kind ("decoder" | "seq2seq"), versions, texts, tokenizer_ids, prompts,
           logits [prompt][position][vocab], batch, greedy [{prompt, ids}],
           rd [{q, r, a, nll_qr, nll_q, rd}], lora
  decoder  batch = {ids, mask, position_ids, logits}: prompts left-padded with pad_id,
           position_ids = cumsum(mask) - 1 clamped at 0
  seq2seq  decoder_inputs [prompt][6] (logits are of these decoder positions);
           batch = {ids, mask, decoder_ids, logits}: encoder ids right-padded with 0
  lora     r, alpha, targets, fan_in_fan_out, examples [{prompt, target}], loss, grads, shapes
"""
import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    # PEFT writes adapter_config.json's target_modules from a set: fix the string hash seed.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse
import copy
import json
import math
import pathlib
import random
import shutil
import time
import warnings

import peft
import tokenizers
import torch
import transformers
from safetensors.torch import load_file
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer
from transformers.convert_slow_tokenizer import generate_merges

V = 300  # byte-level BPE vocabulary of the decoders (256 bytes + 3 specials + merges)
VT = 160  # T5 model vocabulary (the Unigram tokenizer trained for it has ≤ VT pieces)
DECODER_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]  # ids 0, 1, 2; 0 = eos = pad
T5_SPECIALS = ["<pad>", "</s>", "<unk>"]  # ids 0, 1, 2
PROMPT_LENS = [6, 9, 12]  # decoder prompts: the texts' ids truncated to these lengths
NEW_TOKENS = 8  # greedy continuation length
W_STD, NORM_STD, BIAS_STD = 0.3, 0.1, 0.1  # re-drawn weights (see redraw)
# Flan-T5's gated feed-forward multiplies two projections: at std 0.3 its logits are so
# ill-conditioned that float32 itself is 1e-4 from float64 (see conditioned()).
W_STDS = {"flan-t5": 0.2}
# Gemma's RMSNorms scale by 1 + w (their weights start at 0): drawn around 0, not 1, so the
# scale is ~1 as in every other family.
NORM_CENTER = {"gemma2": 0.0, "gemma3": 0.0}
# The largest |float32 − float64| a reference's logits may have: the Rust tests compare within
# 1e-4, which means something only where float32 is this much closer to the exact values.
CONDITIONED = 2e-5

# The three reference texts and the rationale-difficulty triples (question, rationale, answer;
# the first two are also the LoRA examples), in the corpus's style.
TEXTS = [
    "Q: Ann has 3 pens. A: The answer is 3.",
    "Q: Tom has 5 apples and buys 4 more. How many apples does Tom have? A: 5 + 4 = 9.",
    "Q: There are 6 boxes with 7 cards each. How many cards in total? "
    "A: Let's think step by step. 6 * 7 = 42. The answer is 42.",
]
RD = [
    ("Q: 3 + 4?", " A: 3 + 4 =", " 7."),
    ("Q: Sam had 9 eggs and gave away 2.", " A: 9 - 2 =", " 7."),
    ("Q: 5 boxes of 6 pens?", " A: 5 * 6 =", " 30."),
]
RD_BOUNDS = {"q": (4, 8), "r": (4, 8), "a": (2, 4)}


# ---------------------------------------------------------------------------------------------
# Corpus and tokenizers


def corpus() -> list[str]:
    """200 arithmetic word problems with step-by-step rationales (fixed seed)."""
    rng = random.Random(1234)
    names = ["Tom", "Ann", "Sam", "Mia", "Leo", "Zoe", "Max", "Eva"]
    items = ["apples", "pens", "books", "eggs", "cards", "coins", "boxes", "cookies"]
    out = []
    for i in range(200):
        n, it = rng.choice(names), rng.choice(items)
        a, b = rng.randint(2, 20), rng.randint(2, 12)
        kind = i % 4
        if kind == 0:
            out.append(f"Q: {n} has {a} {it} and buys {b} more. How many {it} does {n} have? "
                       f"A: {a} + {b} = {a + b}. The answer is {a + b}.")
        elif kind == 1:
            a = a + b
            out.append(f"Q: {n} had {a} {it} and gave away {b}. How many are left? "
                       f"A: Let's think step by step. {a} - {b} = {a - b}. The answer is {a - b}.")
        elif kind == 2:
            out.append(f"Q: There are {a} boxes with {b} {it} each. How many {it} in total? "
                       f"A: {a} * {b} = {a * b}. The answer is {a * b}.")
        else:
            c = rng.randint(2, 9)
            out.append(f"Q: {n} has {a} {it}, gets {b} more, then loses {c}. How many now? "
                       f"A: First, {a} + {b} = {a + b}. Then, {a + b} - {c} = {a + b - c}. "
                       f"The answer is {a + b - c}.")
    return out


def bpe_tokenizer() -> Tokenizer:
    """Byte-level BPE as GPT-2/Llama-3/Qwen use, trained on the corpus; <|endoftext|> = 0."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=V, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=DECODER_SPECIALS, show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    assert [tok.token_to_id(t) for t in DECODER_SPECIALS] == [0, 1, 2]
    assert tok.get_vocab_size() == V, tok.get_vocab_size()
    return tok


def unigram_tokenizer() -> Tokenizer:
    """SentencePiece-style Unigram as T5 uses (Metaspace, "$A </s>"); <pad>=0 </s>=1 <unk>=2."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=VT, special_tokens=T5_SPECIALS, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(corpus(), trainer=trainer)
    # The trainer is not deterministic (Rust HashMap order): the pieces are, but float sums
    # jitter (1e-15), tied pieces swap places and the last required characters get order-dependent
    # 1e-4 penalties. Scores rounded to 3 decimals, ties sorted by piece: the same file each run.
    j = json.loads(tok.to_str())
    vocab = j["model"]["vocab"]
    specials, rest = vocab[:len(T5_SPECIALS)], vocab[len(T5_SPECIALS):]
    assert [p for p, _ in specials] == T5_SPECIALS
    rest = sorted(((p, round(s, 3) + 0.0) for p, s in rest), key=lambda ps: (-ps[1], ps[0]))
    j["model"]["vocab"] = specials + rest
    tok = Tokenizer.from_str(json.dumps(j))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    assert [tok.token_to_id(t) for t in T5_SPECIALS] == [0, 1, 2]
    # The corpus supports only ~156 pieces; the model keeps VT rows, as real T5 pads 32100 → 32128.
    assert tok.get_vocab_size() <= VT, tok.get_vocab_size()
    return tok


# SentencePiece-style tokenizers (Llama 2, Mistral, Phi-3-mini; Gemma without the space prefix),
# as transformers' LlamaConverter/GemmaConverter write them: specials, the 256 byte-fallback
# pieces <0x00>..<0xFF>, then pieces in merge order, then the characters; the merges are every
# split of every piece into two pieces, ordered by the piece (transformers' generate_merges).
SPM_STYLES = {
    # style: (specials in id order, normaliser, pre-tokenizer)
    "llama-spm": (["<unk>", "<s>", "</s>"],
                  lambda: normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
                  lambda: None),
    "gemma-spm": (["<pad>", "<eos>", "<bos>", "<unk>"],
                  lambda: normalizers.Replace(" ", "▁"),
                  lambda: pre_tokenizers.Split(" ", "merged_with_previous")),
}


def spm_tokenizer(style: str) -> Tokenizer:
    """A SentencePiece-style BPE with byte fallback of V pieces, trained on the corpus."""
    specials, normalizer, pre_tokenizer = SPM_STYLES[style]
    # 1. Train word pieces ("▁" starts a word, as SentencePiece splits by whitespace) on what
    #    is left of V after the specials and the 256 byte pieces: the 20 commonest characters
    #    and merges of them; every other character falls back to its bytes.
    n_pieces = V - len(specials) - 256
    t = Tokenizer(models.BPE())
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=n_pieces, limit_alphabet=20, show_progress=False)
    t.train_from_iterator(corpus(), trainer=trainer)
    trained = json.loads(t.to_str())["model"]
    order = sorted(trained["vocab"].items(), key=lambda kv: kv[1])
    chars = sorted(p for p, _ in order if len(p) == 1)
    merged = [p for p, _ in order if len(p) > 1]
    pieces = merged + chars
    assert len(pieces) == n_pieces, (len(pieces), n_pieces)
    # 2. The vocabulary in SentencePiece's order and its merges (every split, by the piece's id).
    vocab = {p: i for i, p in enumerate(specials + [f"<0x{b:02X}>" for b in range(256)] + pieces)}
    merges = generate_merges(vocab, None)
    unk = "<unk>"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=unk, fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizer()
    tok.pre_tokenizer = pre_tokenizer()
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if style == "llama-spm":
        steps.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(steps)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    assert tok.get_vocab_size() == V, tok.get_vocab_size()
    return tok


def make_spm_tokenizers(out: pathlib.Path) -> None:
    """tests/fixtures/tokenizers/{llama-spm,gemma-spm}: tokenizer.json + tokenizer_config.json."""
    for style, (specials, _, _) in SPM_STYLES.items():
        d = out / style
        d.mkdir(parents=True, exist_ok=True)
        names = dict(zip(["unk_token", "bos_token", "eos_token"], specials)) if style == "llama-spm" \
            else dict(zip(["pad_token", "eos_token", "bos_token", "unk_token"], specials))
        save_tokenizer(spm_tokenizer(style), d, names)
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        for text in TEXTS:
            ids = tok.encode(text, add_special_tokens=False).ids
            assert tok.decode(ids) == text, (style, text)


def save_tokenizer(tok: Tokenizer, d: pathlib.Path, specials: dict) -> None:
    """tokenizer.json + a minimal tokenizer_config.json; AutoTokenizer must give the same ids."""
    tok.save(str(d / "tokenizer.json"))
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", **specials}
    write_json(d / "tokenizer_config.json", cfg, indent=2)
    auto = AutoTokenizer.from_pretrained(str(d))
    for t in TEXTS + [s for triple in RD for s in triple]:
        assert auto(t)["input_ids"] == tok.encode(t).ids, t


# ---------------------------------------------------------------------------------------------
# Shared helpers


def fmt(x):
    """Floats (nested lists) rounded to 6 significant digits; deterministic via repr of float."""
    if isinstance(x, list):
        return [fmt(v) for v in x]
    return float(f"{x:.6g}")


def write_json(path: pathlib.Path, obj, indent=None) -> None:
    seps = (",", ":") if indent is None else (",", ": ")
    path.write_text(json.dumps(obj, separators=seps, indent=indent, allow_nan=False) + "\n")


def redraw(model: torch.nn.Module, w_std: float, norm_center: float = 1.0) -> None:
    """Re-draw every parameter: the default init (std 0.02) gives near-uniform logits.

    Weights of linear/embedding/relative-attention-bias layers ~ N(0, 0.3); norm weights
    ~ norm_center + N(0, 0.1); every bias ~ N(0, 0.1). Tied parameters are drawn once.
    """
    seen = set()
    with torch.no_grad():
        for module in model.modules():
            is_norm = "norm" in type(module).__name__.lower()
            for name, p in module.named_parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                if name == "bias":
                    p.normal_(0.0, BIAS_STD)
                elif is_norm:
                    p.normal_(0.0, NORM_STD).add_(norm_center)
                else:
                    p.normal_(0.0, w_std)


def conditioned(model, kwargs_list: list[dict]) -> None:
    """The model's float32 logits are within CONDITIONED of its float64 ones on every input."""
    m64 = copy.deepcopy(model).double()
    for kw in kwargs_list:
        a = model(**kw).logits.double()
        b = m64(**kw).logits
        diff = (a - b).abs().max().item()
        assert diff < CONDITIONED, f"float32 logits are {diff:.2e} from float64 (> {CONDITIONED})"


def clip(ids: list[int], lo: int, hi: int, what: str) -> list[int]:
    assert len(ids) >= lo, f"{what}: {len(ids)} tokens < {lo}"
    return ids[:hi]


def check_logits(logits0: torch.Tensor, greedy: list[dict]) -> None:
    """Finite, not near-uniform, and greedy continuations that are not all one repeated token."""
    assert torch.isfinite(logits0).all()
    std = logits0.std(dim=-1).min().item()
    assert std > 0.5, f"first prompt's logits are near-uniform (min std over vocab {std:.3f})"
    assert not all(len(set(g["ids"])) == 1 for g in greedy), "every greedy continuation repeats one token"


# PEFT has no default target modules for phi3: morsd's default (the fused attention projection).
LORA_TARGETS = {"phi3": ["qkv_proj"]}


def lora_config(targets=None) -> peft.LoraConfig:
    # target_modules=None: PEFT picks its default targets for the model_type.
    # init_lora_weights=False: lora_B keeps nn.Linear's (seeded) init, so it is nonzero.
    return peft.LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False, target_modules=targets)


def lora_step(model, d: pathlib.Path, loss_fn, examples: list[dict]) -> dict:
    """Wrap in PEFT, save the adapters (the state the step starts from), one loss.backward()."""
    cfg = lora_config(LORA_TARGETS.get(d.name))
    pm = peft.get_peft_model(model, cfg)
    pm.eval()  # no dropout anywhere (lora_dropout=0, model dropouts 0)
    pm.save_pretrained(str(d / "lora"))
    (d / "lora" / "README.md").unlink(missing_ok=True)  # PEFT's boilerplate model card
    saved = load_file(str(d / "lora" / "adapter_model.safetensors"))
    pcfg = pm.peft_config["default"]

    loss = loss_fn(pm, examples)
    loss.backward()

    grads, shapes = {}, {}
    for name, p in pm.named_parameters():
        if "lora_" not in name:
            assert p.grad is None, name
            continue
        key = name.replace(".default.", ".")  # save_pretrained drops the adapter name
        assert key in saved, key
        assert torch.equal(saved[key], p.detach()), key
        grads[key] = fmt(p.grad.reshape(-1).tolist())
        shapes[key] = list(p.shape)
    assert set(grads) == set(saved), sorted(set(saved) ^ set(grads))
    return {
        "r": pcfg.r,
        "alpha": pcfg.lora_alpha,
        "targets": sorted(pcfg.target_modules),
        "fan_in_fan_out": pcfg.fan_in_fan_out,
        "examples": examples,
        "loss": fmt(loss.item()),
        "grads": dict(sorted(grads.items())),
        "shapes": dict(sorted(shapes.items())),
    }


def nll(logp: torch.Tensor, ids: list[int], start: int) -> float:
    """Mean −log p of ids, where logp[start + i] is the distribution predicting ids[i]."""
    return -sum(logp[start + i, t].item() for i, t in enumerate(ids)) / len(ids)


# ---------------------------------------------------------------------------------------------
# Decoder-only references (llama, llama3, qwen2, qwen3, mistral, gemma2, gemma3, phi3, gpt2)


def decoder_reference(model, tok: Tokenizer, pad_id: int, d: pathlib.Path) -> dict:
    # 1. Tokenizer ids of the texts (default special-token handling), prompts = their prefixes.
    tok_ids = [tok.encode(t).ids for t in TEXTS]
    prompts = [clip(ids, n, n, f"text {i}") for i, (ids, n) in enumerate(zip(tok_ids, PROMPT_LENS))]

    def fwd(ids: list[int]) -> torch.Tensor:
        return model(input_ids=torch.tensor([ids])).logits[0]

    with torch.no_grad():
        conditioned(model, [{"input_ids": torch.tensor([p])} for p in prompts])
        # 2. Logits of every position of each prompt, alone and unpadded.
        logits = [fwd(p) for p in prompts]

        # 3. One left-padded batch; position_ids = cumsum(mask) - 1 clamped at 0, as generate.
        n = max(map(len, prompts))
        ids = torch.tensor([[pad_id] * (n - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (n - len(p)) + [1] * len(p) for p in prompts])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        blogits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        assert torch.isfinite(blogits).all()
        for i, p in enumerate(prompts):
            diff = (blogits[i, n - len(p):] - logits[i]).abs().max().item()
            assert diff < 1e-4, f"batch row {i} differs from its prompt by {diff}"

        # 4. Greedy: append argmax of the last position 8 times (full forward each step, no eos).
        greedy = []
        for i, p in enumerate(prompts):
            seq = list(p)
            for _ in range(NEW_TOKENS):
                seq.append(int(fwd(seq)[-1].argmax()))
            assert seq[len(p)] == int(logits[i][-1].argmax())
            greedy.append({"prompt": p, "ids": seq[len(p):]})
        check_logits(logits[0], greedy)

        # 5. Rationale difficulty: NLL of a after q ++ r versus after q alone. log_softmax of the
        #    float32 logits, then float64 for the means and the exp.
        rd = []
        for qt, rt, at in RD:
            q = clip(tok.encode(qt).ids, *RD_BOUNDS["q"], "q")
            r = clip(tok.encode(rt).ids, *RD_BOUNDS["r"], "r")
            a = clip(tok.encode(at).ids, *RD_BOUNDS["a"], "a")
            lp_qr = torch.log_softmax(fwd(q + r + a), -1).double()
            lp_q = torch.log_softmax(fwd(q + a), -1).double()
            nll_qr = nll(lp_qr, a, len(q) + len(r) - 1)
            nll_q = nll(lp_q, a, len(q) - 1)
            rd.append({"q": q, "r": r, "a": a, "nll_qr": fmt(nll_qr), "nll_q": fmt(nll_q),
                       "rd": fmt(math.exp(nll_qr - nll_q))})

    # 6. LoRA: two examples (prompt = rd's q, target = its r ++ a), one right-padded batch.
    examples = [{"prompt": x["q"], "target": x["r"] + x["a"]} for x in rd[:2]]

    def loss_fn(m, exs):
        seqs = [e["prompt"] + e["target"] for e in exs]
        n = max(map(len, seqs))
        ids = torch.tensor([s + [pad_id] * (n - len(s)) for s in seqs])
        mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in seqs])
        labels = torch.tensor([[-100] * len(e["prompt"]) + e["target"] + [-100] * (n - len(s))
                               for e, s in zip(exs, seqs)])
        lg = m(input_ids=ids, attention_mask=mask).logits
        # Causal shift: position t predicts token t+1; mean over all target tokens of the batch.
        logp = torch.log_softmax(lg[:, :-1].float(), -1)
        tgt = labels[:, 1:]
        keep = tgt != -100
        picked = logp.gather(-1, tgt.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        loss = -(picked * keep).sum() / keep.sum()
        hf = m(input_ids=ids, attention_mask=mask, labels=labels).loss
        assert abs(hf.item() - loss.item()) < 1e-5, (hf.item(), loss.item())
        return loss

    lora = lora_step(model, d, loss_fn, examples)
    return {
        "kind": "decoder",
        "texts": TEXTS,
        "tokenizer_ids": tok_ids,
        "prompts": prompts,
        "logits": [fmt(x.tolist()) for x in logits],
        "batch": {"ids": ids.tolist(), "mask": mask.tolist(), "position_ids": pos.tolist(),
                  "logits": fmt(blogits.tolist())},
        "greedy": greedy,
        "rd": rd,
        "lora": lora,
    }


# ---------------------------------------------------------------------------------------------
# Encoder-decoder references (flan-t5, t5)


def seq2seq_reference(model, tok: Tokenizer, d: pathlib.Path) -> dict:
    start = model.config.decoder_start_token_id  # 0 = <pad>
    # 1. Encoder prompts = the texts' tokenizer ids (each ends in </s> = 1).
    tok_ids = [tok.encode(t).ids for t in TEXTS]
    prompts = tok_ids
    assert all(p[-1] == 1 for p in prompts)
    # Decoder inputs: [start] + the first 5 tokens of the text's answer part (fixed, no padding).
    dec = []
    for t in TEXTS:
        ids = tok.encode(t[t.index("A:"):], add_special_tokens=False).ids
        dec.append([start] + clip(ids, 5, 5, "decoder input"))

    def fwd(enc: list[int], dec_ids: list[int]) -> torch.Tensor:
        return model(input_ids=torch.tensor([enc]), decoder_input_ids=torch.tensor([dec_ids])).logits[0]

    with torch.no_grad():
        conditioned(model, [{"input_ids": torch.tensor([p]), "decoder_input_ids": torch.tensor([di])}
                            for p, di in zip(prompts, dec)])
        # 2. Logits of every decoder position, per prompt, unpadded.
        logits = [fwd(p, di) for p, di in zip(prompts, dec)]

        # 3. One batch: encoder ids right-padded with 0 + encoder mask; decoder inputs as above.
        n = max(map(len, prompts))
        ids = torch.tensor([p + [0] * (n - len(p)) for p in prompts])
        mask = torch.tensor([[1] * len(p) + [0] * (n - len(p)) for p in prompts])
        dids = torch.tensor(dec)
        blogits = model(input_ids=ids, attention_mask=mask, decoder_input_ids=dids).logits
        for i in range(len(prompts)):
            diff = (blogits[i] - logits[i]).abs().max().item()
            assert diff < 1e-4, f"batch row {i} differs from its prompt by {diff}"

        # 4. Greedy: decoder from [start], append argmax 8 times (full forward each step).
        greedy = []
        for p in prompts:
            seq = [start]
            for _ in range(NEW_TOKENS):
                seq.append(int(fwd(p, seq)[-1].argmax()))
            assert seq[1] == int(fwd(p, [start])[-1].argmax())
            greedy.append({"prompt": p, "ids": seq[1:]})
        check_logits(logits[0], greedy)

        # 5. Rationale difficulty: q to the encoder; NLL of a after decoder prefix [start] ++ r
        #    versus [start] alone. log_softmax of float32 logits, then float64.
        rd = []
        for qt, rt, at in RD:
            q = clip(tok.encode(qt).ids, *RD_BOUNDS["q"], "q")
            if q[-1] != 1:
                q = q[:-1] + [1]
            r = clip(tok.encode(rt, add_special_tokens=False).ids, *RD_BOUNDS["r"], "r")
            a = clip(tok.encode(at, add_special_tokens=False).ids, *RD_BOUNDS["a"], "a")
            lp_qr = torch.log_softmax(fwd(q, [start] + r + a), -1).double()
            lp_q = torch.log_softmax(fwd(q, [start] + a), -1).double()
            nll_qr = nll(lp_qr, a, len(r))  # decoder position len(r) (the last r token) predicts a_0
            nll_q = nll(lp_q, a, 0)
            rd.append({"q": q, "r": r, "a": a, "nll_qr": fmt(nll_qr), "nll_q": fmt(nll_q),
                       "rd": fmt(math.exp(nll_qr - nll_q))})

    # 6. LoRA: prompt = encoder ids (rd's q), target = decoder labels (r ++ a ++ </s>).
    examples = [{"prompt": x["q"], "target": x["r"] + x["a"] + [1]} for x in rd[:2]]

    def loss_fn(m, exs):
        ne = max(len(e["prompt"]) for e in exs)
        nl = max(len(e["target"]) for e in exs)
        ids = torch.tensor([e["prompt"] + [0] * (ne - len(e["prompt"])) for e in exs])
        mask = torch.tensor([[1] * len(e["prompt"]) + [0] * (ne - len(e["prompt"])) for e in exs])
        labels = torch.tensor([e["target"] + [-100] * (nl - len(e["target"])) for e in exs])
        # HF's standard loss: decoder_input_ids = shift_right(labels) (start 0, −100 → 0); mean
        # cross-entropy over every label that is not −100, i.e. over all target tokens of both.
        return m(input_ids=ids, attention_mask=mask, labels=labels).loss

    lora = lora_step(model, d, loss_fn, examples)
    return {
        "kind": "seq2seq",
        "texts": TEXTS,
        "tokenizer_ids": tok_ids,
        "prompts": prompts,
        "decoder_inputs": dec,
        "logits": [fmt(x.tolist()) for x in logits],
        "batch": {"ids": ids.tolist(), "mask": mask.tolist(), "decoder_ids": dids.tolist(),
                  "logits": fmt(blogits.tolist())},
        "greedy": greedy,
        "rd": rd,
        "lora": lora,
    }


# ---------------------------------------------------------------------------------------------
# Families: one config each


def decoder_ids() -> dict:
    return {"vocab_size": V, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}


def llama():
    cfg = transformers.LlamaConfig(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, attention_dropout=0.0)
    return transformers.LlamaForCausalLM(cfg)


def llama3():
    # Llama 3.1's rope_scaling with an original context of 64: of the head's 4 frequencies
    # (wavelengths 6.3, 63, 628, 6283 tokens) the first is kept, the second blended and the
    # last two divided by 8, so every branch of the scaling shows in the logits.
    cfg = transformers.LlamaConfig(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, attention_dropout=0.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 64})
    return transformers.LlamaForCausalLM(cfg)


def mistral():
    # A window of 4 tokens, shorter than every prompt (6, 9, 12 tokens).
    cfg = transformers.MistralConfig(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=4,
        attention_dropout=0.0)
    return transformers.MistralForCausalLM(cfg)


def gemma2():
    # Local (window 4) then global layer; soft caps low enough to bind (the released 50 and
    # 30 barely would on a model this small); query_pre_attn_scalar ≠ head_dim.
    cfg = transformers.Gemma2Config(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, sliding_window=4,
        query_pre_attn_scalar=16, attn_logit_softcapping=5.0, final_logit_softcapping=8.0,
        hidden_activation="gelu_pytorch_tanh", attention_dropout=0.0)
    return transformers.Gemma2ForCausalLM(cfg)


def gemma3():
    # Two local layers (window 4, base 10⁴) then a global one (base 10⁶, linear scaling ×2);
    # q/k norms; query_pre_attn_scalar ≠ head_dim.
    cfg = transformers.Gemma3TextConfig(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
        rope_theta=1e6, rope_local_base_freq=10000.0, rms_norm_eps=1e-6,
        rope_scaling={"rope_type": "linear", "factor": 2.0}, sliding_window=4,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        query_pre_attn_scalar=16, tie_word_embeddings=True, attention_dropout=0.0)
    return transformers.Gemma3ForCausalLM(cfg)


def phi3():
    # Phi-4-mini's shape: fused qkv_proj and gate_up_proj, 3/4 of each head rotated, longrope
    # (per-frequency factors, attention factor √(1 + ln(128/32) / ln 32)); a window of 5.
    cfg = transformers.Phi3Config(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        original_max_position_embeddings=32, partial_rotary_factor=0.75,
        rope_scaling={"type": "longrope", "short_factor": [1.0, 1.5, 3.0],
                      "long_factor": [2.0, 4.0, 8.0]},
        rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, sliding_window=5,
        resid_pdrop=0.0, embd_pdrop=0.0, attention_dropout=0.0)
    return transformers.Phi3ForCausalLM(cfg)


def qwen2():
    cfg = transformers.Qwen2Config(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
        attention_dropout=0.0)
    return transformers.Qwen2ForCausalLM(cfg)


def qwen3():
    # head_dim 16 != hidden / heads = 8, as in real Qwen3 (q_proj: 32 → 64, o_proj: 64 → 32).
    cfg = transformers.Qwen3Config(
        **decoder_ids(), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
        rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
        use_sliding_window=False, attention_dropout=0.0)
    return transformers.Qwen3ForCausalLM(cfg)


def gpt2():
    cfg = transformers.GPT2Config(
        **decoder_ids(), n_embd=32, n_layer=2, n_head=4, n_positions=64,
        activation_function="gelu_new", layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0)
    return transformers.GPT2LMHeadModel(cfg)


def t5_config(ff: str, tied: bool):
    return transformers.T5Config(
        vocab_size=VT, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=4, relative_attention_num_buckets=32, relative_attention_max_distance=128,
        feed_forward_proj=ff, tie_word_embeddings=tied, dropout_rate=0.0,
        layer_norm_epsilon=1e-6, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)


def flan_t5():
    # T5 v1.1 / Flan-T5: gated GELU ("gelu_new"), untied head.
    return transformers.T5ForConditionalGeneration(t5_config("gated-gelu", tied=False))


def t5():
    # Original T5: ReLU, tied head (decoder output × d_model^-0.5 before the head).
    return transformers.T5ForConditionalGeneration(t5_config("relu", tied=True))


FAMILIES = {"llama": llama, "qwen2": qwen2, "qwen3": qwen3, "gpt2": gpt2, "flan-t5": flan_t5, "t5": t5,
            "llama3": llama3, "mistral": mistral, "gemma2": gemma2, "gemma3": gemma3, "phi3": phi3}
# Seeds by position: families added later come last, so the earlier fixtures stay the same.
SEEDS = {name: 1000 + i for i, name in enumerate(FAMILIES)}


def make_family(name: str, out: pathlib.Path) -> None:
    d = out / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    torch.manual_seed(SEEDS[name])
    # 1. Model from its tiny config, eager attention (finite logits at fully masked pad rows).
    model = FAMILIES[name]()
    model.config._attn_implementation = "eager"
    # 2. Weights re-drawn so logits are far from uniform; float32, eval mode.
    redraw(model, W_STDS.get(name, W_STD), NORM_CENTER.get(name, 1.0))
    if name == "t5":
        # The tied T5 head sees the decoder output × d_model^-0.5, so its logits would have
        # std ≈ 0.3: the decoder's final norm weight × d_model^0.5 brings them back to ≈ 1.5.
        # (A larger embedding instead makes every greedy step repeat its input token.)
        with torch.no_grad():
            model.decoder.final_layer_norm.weight.mul_(model.config.d_model ** 0.5)
    model = model.float().eval()
    model.save_pretrained(str(d), safe_serialization=True)
    # 3. Tokenizer trained on the corpus, checked against AutoTokenizer.
    seq2seq = name in ("flan-t5", "t5")
    if seq2seq:
        tok = unigram_tokenizer()
        save_tokenizer(tok, d, {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"})
    else:
        tok = bpe_tokenizer()
        eot = DECODER_SPECIALS[0]
        save_tokenizer(tok, d, {"bos_token": eot, "eos_token": eot, "pad_token": eot})
    # 4. The references (and the LoRA adapter in lora/).
    body = seq2seq_reference(model, tok, d) if seq2seq else decoder_reference(model, tok, 0, d)
    ref = {
        "family": name,
        "kind": body.pop("kind"),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__, "tokenizers": tokenizers.__version__},
        **body,
    }
    write_json(d / "reference.json", ref)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures/families")
    ap.add_argument("--family", action="append", choices=list(FAMILIES))
    ap.add_argument("--tokenizers", metavar="DIR",
                    help="write only the SentencePiece-style tokenizers into DIR "
                         "(tests/fixtures/tokenizers) and stop")
    a = ap.parse_args()
    if a.tokenizers:
        make_spm_tokenizers(pathlib.Path(a.tokenizers))
        return 0
    torch.set_num_threads(1)  # same float reductions whatever the machine's core count
    torch.use_deterministic_algorithms(True)
    transformers.logging.set_verbosity_error()
    # PEFT: "Could not find a config file" (no hub id) and gpt2's Conv1D → fan_in_fan_out=True.
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")
    out = pathlib.Path(a.out)
    rows = []
    for name in a.family or list(FAMILIES):
        t0 = time.time()
        make_family(name, out)
        files = sorted(p for p in (out / name).rglob("*") if p.is_file())
        rows.append((name, len(files), sum(p.stat().st_size for p in files), time.time() - t0))
    print(f"{'family':<10} {'files':>5} {'bytes':>9} {'seconds':>7}")
    for name, n, size, secs in rows:
        print(f"{name:<10} {n:>5} {size:>9} {secs:>7.1f}")
    print(f"{'total':<10} {sum(r[1] for r in rows):>5} {sum(r[2] for r in rows):>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
