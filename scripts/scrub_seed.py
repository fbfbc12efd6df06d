#!/usr/bin/env python3
"""Turns a fuzz seed cut from a real data file into an invented one of the same shape.

The data under ../shared/data is never copied into the repo, so a seed that starts as a few
records of a real file is scrubbed before it is committed: every natural-language word is
replaced by an invented one (the same one each time), while JSON keys, the formats' own
markers ("Let's think step by step", "pred_after", "The answer is", ...), numbers and
punctuation stay, so the parsers still take the seed's successful paths.

    python3 scripts/scrub_seed.py fuzz/corpus/<target>/<file>...
"""
import re, sys, hashlib, pathlib
KEEP = set("""instruction output label ID Body Question Equation Answer Type question options rationale
correct answerKey stem choices text input target_scores target examples metadata data sample_index
completion_index answer reasoning_prompt reasoning_completion prompt completion abstractive_explanation
extractive_explanation id iIndex sQuestion lEquations lSolutions Q A Let's let think step by Therefore
therefore the The answer is pred_before pred_after pred_list pred_mode GT Namespace dataset method
zero_shot_cot setup loader th_sampling Choices True False Yes No yes no true false null svamp aqua
coin_flip commonsensqa gsm8k multiarith addsub singleeq strategyqa date shuffled objects last letters
sampling st nd rd th Addition Subtraction Multiplication Division among through arabic numerals
heads up tails flip flips flipped still coin""".split())
def pseudo(w):
    h = hashlib.sha256(w.lower().encode()).digest()
    cons, vow = "bdfgklmnprstvz", "aeiou"
    out = "".join((cons if i % 2 == 0 else vow)[h[i] % (14 if i % 2 == 0 else 5)] for i in range(len(w)))
    return out.capitalize() if w[0].isupper() else out
def scrub(text):
    keys = set(re.findall(r'"([A-Za-z_]+)"\s*:', text))
    def rep(m):
        w = m.group(0)
        if w in KEEP or w in keys or len(w) < 3:
            return w
        return pseudo(w)
    return re.sub(r"[A-Za-z][A-Za-z_]*(?:'[a-z]+)?", rep, text)
for p in sys.argv[1:]:
    b = pathlib.Path(p).read_bytes()
    # Keep a leading binary selector header (bytes < 0x20) as it is.
    i = 0
    while i < len(b) and b[i] < 0x20 and b[i] not in (9, 10, 13):
        i += 1
    try:
        t = b[i:].decode()
    except UnicodeDecodeError:
        print("skip (not UTF-8):", p); continue
    pathlib.Path(p).write_bytes(b[:i] + scrub(t).encode())
