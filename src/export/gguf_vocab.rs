//! The tokenizer of an exported GGUF (`tokenizer.*` metadata), as llama.cpp reads it:
//! copied verbatim from the base GGUF when there is one ([`base_tokenizer`]), else derived from
//! the student's `tokenizers` tokenizer ([`derived_tokenizer`]):
//! - a byte-level BPE (GPT-2, SmolLM2, Qwen, Llama 3) as `tokenizer.ggml.model = gpt2`, with
//!   llama.cpp's name for its pre-tokenizer ([`pre_name`]) and its merges;
//! - a SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Phi-3-mini, Gemma) as
//!   `llama`, with scores that make llama.cpp's SentencePiece merging choose what the BPE's
//!   merges choose ([`spm`]).
//!
//! Anything llama.cpp would split or merge otherwise is refused with the reason. A derived
//! tokenizer says `add_bos_token = false`: morsd never prepends one.

use super::gguf::fail;
use crate::error::{Error, Result};
use crate::student::tokenizer::{Tok, two_piece_splits};
use candle_core::quantized::gguf_file::{self, Value};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// llama.cpp's token types (`llama_token_type`).
pub(super) const NORMAL: i32 = 1;
pub(super) const UNKNOWN: i32 = 2;
pub(super) const CONTROL: i32 = 3;
pub(super) const USER_DEFINED: i32 = 4;
pub(super) const UNUSED: i32 = 5;
pub(super) const BYTE: i32 = 6;

/// Every `tokenizer.*` key of the GGUF file `path`, sorted by key; its vocabulary must be
/// `vocab_size` tokens.
pub(super) fn base_tokenizer(path: &Path, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    let bad = |message: String| Error::Input {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let content =
        gguf_file::Content::read(&mut file).map_err(|e| bad(format!("not a GGUF file: {e}")))?;
    let mut keys: Vec<(String, Value)> = content
        .metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer."))
        .collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    let n = keys
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.to_vec().ok())
        .map(Vec::len)
        .ok_or_else(|| bad("GGUF metadata has no `tokenizer.ggml.tokens` array".into()))?;
    if n != vocab_size {
        return Err(bad(format!(
            "its vocabulary has {n} tokens, the student's {vocab_size}"
        )));
    }
    Ok(keys)
}

/// The split regex of Qwen2/2.5/3's tokenizer (llama.cpp's `qwen2`).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// The split regex of Llama 3's tokenizer (llama.cpp's `llama-bpe`): Qwen2's, with numbers in
/// runs of up to three digits.
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's pre-tokenizer name for a `tokenizers` pre-tokenizer (JSON): `gpt-2` (the GPT-2
/// regex) for a ByteLevel step that splits by itself; `smollm` for Digits(individual) then
/// such a ByteLevel (what [`crate::student::checkpoint`] reads `smollm` as); `qwen2` and
/// `llama-bpe` for a Split by Qwen's or Llama 3's regex then a ByteLevel. `None` for anything
/// else: llama.cpp would split the text otherwise, so the file would tokenise differently.
fn pre_name(pre: &serde_json::Value) -> Option<&'static str> {
    let kind = |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()).map(String::from);
    let byte_level = |v: &serde_json::Value| kind(v).as_deref() == Some("ByteLevel");
    let splitting = |v: &serde_json::Value| {
        byte_level(v) && v.get("use_regex").and_then(|x| x.as_bool()) != Some(false)
    };
    match kind(pre).as_deref() {
        Some("ByteLevel") if splitting(pre) => Some("gpt-2"),
        Some("Sequence") => {
            let steps = pre.get("pretokenizers")?.as_array()?;
            let digits = |v: &serde_json::Value| {
                kind(v).as_deref() == Some("Digits")
                    && v.get("individual_digits").and_then(|x| x.as_bool()) == Some(true)
            };
            fn regex(v: &serde_json::Value) -> Option<&str> {
                let isolated = v.get("type").and_then(|t| t.as_str()) == Some("Split")
                    && v.get("behavior").and_then(|b| b.as_str()) == Some("Isolated")
                    && v.get("invert").and_then(|b| b.as_bool()) != Some(true);
                if !isolated {
                    return None;
                }
                v.get("pattern")?.get("Regex")?.as_str()
            }
            match steps.as_slice() {
                [a] if splitting(a) => Some("gpt-2"),
                [a, b] if digits(a) && splitting(b) => Some("smollm"),
                [a, b] if byte_level(b) && !splitting(b) => match regex(a)? {
                    QWEN2_REGEX => Some("qwen2"),
                    LLAMA3_REGEX => Some("llama-bpe"),
                    _ => None,
                },
                _ => None,
            }
        }
        _ => None,
    }
}

/// `tokenizer.*` metadata of the student's tokenizer: a BPE with byte fallback as
/// SentencePiece's ([`spm`]), any other BPE as byte-level ([`byte_level`]); padded to
/// `vocab_size` tokens with unused `[PAD{id}]` tokens (the converter's convention for ids the
/// tokenizer lacks).
pub(super) fn derived_tokenizer(tok: &Tok, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    let text = tok
        .inner
        .to_string(false)
        .map_err(|e| fail(format!("tokenizer: {e}")))?;
    let json: Json =
        serde_json::from_str(&text).map_err(|e| fail(format!("tokenizer JSON: {e}")))?;
    let kind = json["model"]["type"].as_str().unwrap_or("unknown");
    if kind != "BPE" {
        return Err(fail(format!(
            "the tokenizer is `{kind}`, not BPE: only byte-level BPE (tokenizer.ggml.model = gpt2) and SentencePiece-style BPE with byte fallback (llama) can be exported"
        )));
    }
    if json["model"]["byte_fallback"].as_bool() == Some(true) {
        spm(tok, &json, vocab_size)
    } else {
        byte_level(tok, &json, vocab_size)
    }
}

/// Tokens by id and their llama.cpp types: the BPE vocabulary (typed by `typed`), then the
/// added tokens (control when special, else user-defined); ids the tokenizer lacks are unused
/// `[PAD{id}]` tokens.
fn tokens_by_id(
    json: &Json,
    vocab_size: usize,
    typed: impl Fn(&str) -> i32,
) -> Result<(Vec<Value>, Vec<i32>)> {
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![NORMAL; vocab_size];
    let mut place = |id: Option<u64>, t: &str, ty: i32| -> Result<()> {
        let id = id
            .and_then(|i| usize::try_from(i).ok())
            .ok_or_else(|| fail(format!("token `{t}` has no id")))?;
        if id >= vocab_size {
            return Err(fail(format!(
                "token `{t}` has id {id}, beyond the student's vocabulary of {vocab_size}"
            )));
        }
        tokens[id] = Some(t.to_string());
        types[id] = ty;
        Ok(())
    };
    let vocab = json["model"]["vocab"]
        .as_object()
        .ok_or_else(|| fail("the BPE tokenizer has no vocabulary"))?;
    for (t, id) in vocab {
        place(id.as_u64(), t, typed(t))?;
    }
    for a in json["added_tokens"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let t = a["content"]
            .as_str()
            .ok_or_else(|| fail("an added token has no content"))?;
        let special = a["special"].as_bool().unwrap_or(false);
        place(
            a["id"].as_u64(),
            t,
            if special { CONTROL } else { USER_DEFINED },
        )?;
    }
    let tokens = tokens
        .into_iter()
        .enumerate()
        .map(|(id, t)| {
            Value::String(t.unwrap_or_else(|| {
                types[id] = UNUSED;
                format!("[PAD{id}]")
            }))
        })
        .collect();
    Ok((tokens, types))
}

/// The BPE's merges as pairs (`tokenizers` writes `"a b"` strings or `[a, b]` pairs).
fn merge_pairs(model: &Json) -> Result<Vec<(String, String)>> {
    model["merges"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .map(|m| {
            let pair = match m {
                Json::String(s) => s.split_once(' '),
                Json::Array(p) => match p.as_slice() {
                    [a, b] => a.as_str().zip(b.as_str()),
                    _ => None,
                },
                _ => None,
            };
            pair.map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| fail(format!("merge {m} is not a pair of tokens")))
        })
        .collect()
}

/// The special ids both tokenizer kinds write: end of sequence and padding are the student's;
/// beginning of sequence is a control token by a known name, else end of sequence (GPT-2's
/// convention), never added; no end of sequence added either.
fn special_ids(tok: &Tok, types: &[i32]) -> Result<Vec<(String, Value)>> {
    let n = types.len();
    for (what, id) in [("end-of-sequence", tok.eos), ("padding", tok.pad)] {
        if id as usize >= n {
            return Err(fail(format!(
                "{what} id {id} is beyond the vocabulary of {n}"
            )));
        }
    }
    let bos = ["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"]
        .iter()
        .find_map(|t| tok.inner.token_to_id(t))
        .filter(|&id| (id as usize) < n && types[id as usize] == CONTROL)
        .unwrap_or(tok.eos);
    Ok(vec![
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(bos)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(tok.eos)),
        (
            "tokenizer.ggml.padding_token_id".into(),
            Value::U32(tok.pad),
        ),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
    ])
}

/// A byte-level BPE as llama.cpp's `gpt2` tokenizer: no normaliser but NFC, no space added
/// before the text, a pre-tokenizer llama.cpp has a name for ([`pre_name`]), merges as `a b`.
fn byte_level(tok: &Tok, json: &Json, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    // 1. What llama.cpp does to the text before the merges: no normaliser beyond NFC, never a
    //    space before it, one of its named splits.
    match json["normalizer"]["type"].as_str() {
        None | Some("NFC") => {}
        Some(other) => {
            return Err(fail(format!(
                "the tokenizer normalises text (`{other}`), which llama.cpp's BPE tokenizer does not: only byte-level BPE without a normaliser (or NFC) can be exported"
            )));
        }
    }
    let prefix = |v: &Json| v["add_prefix_space"].as_bool() == Some(true);
    let pre_tok = &json["pre_tokenizer"];
    if prefix(pre_tok)
        || pre_tok["pretokenizers"]
            .as_array()
            .is_some_and(|steps| steps.iter().any(prefix))
    {
        return Err(fail(
            "the tokenizer adds a space before the text (`add_prefix_space`), which llama.cpp's BPE tokenizer does not",
        ));
    }
    let pre = pre_name(pre_tok).ok_or_else(|| {
        fail(format!(
            "the tokenizer's pre-tokenizer ({pre_tok}) is not one llama.cpp splits text by (GPT-2's ByteLevel, SmolLM2's, Qwen2's or Llama 3's): only byte-level BPE with those (tokenizer.ggml.model = gpt2) can be exported"
        ))
    })?;
    // 2. Tokens by id, then the merges as "a b".
    let (tokens, types) = tokens_by_id(json, vocab_size, |_| NORMAL)?;
    let merges: Vec<Value> = merge_pairs(&json["model"])?
        .into_iter()
        .map(|(a, b)| {
            if a.contains(' ') || b.contains(' ') {
                Err(fail(format!(
                    "merge ({a:?}, {b:?}) cannot be written as `a b` (GGUF's merge format)"
                )))
            } else {
                Ok(Value::String(format!("{a} {b}")))
            }
        })
        .collect::<Result<_>>()?;
    let mut md = vec![
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String(pre.into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        ("tokenizer.ggml.merges".into(), Value::Array(merges)),
    ];
    md.extend(special_ids(tok, &types)?);
    md.push((
        "tokenizer.ggml.token_type".into(),
        Value::Array(types.into_iter().map(Value::I32).collect()),
    ));
    Ok(md)
}

/// Whether a SentencePiece-style tokenizer writes `▁` before the text (llama.cpp's
/// `add_space_prefix`). llama.cpp writes spaces as `▁`, adds one `▁` before the text (and after
/// each special token) when told, and does nothing else to it. So the tokenizer must do that
/// and no more: the normaliser Prepend("▁") + Replace(" ", "▁") (Llama 2's, Mistral's) or
/// Replace(" ", "▁") alone (Gemma's, whose Split on " " then finds no space left), or no
/// normaliser and a Metaspace pre-tokenizer that does not split (newer conversions). A
/// Metaspace that prepends `first` adds no `▁` after a special token in the text, llama.cpp
/// does: the two differ only on text that names special tokens, which morsd's prompts do not.
fn spm_prefix(json: &Json) -> Result<bool> {
    let (norm, pre) = (&json["normalizer"], &json["pre_tokenizer"]);
    let ty = |v: &Json| v["type"].as_str().map(String::from);
    let replace = |v: &Json| {
        ty(v).as_deref() == Some("Replace") && v["pattern"]["String"] == " " && v["content"] == "▁"
    };
    let prepend = |v: &Json| ty(v).as_deref() == Some("Prepend") && v["prepend"] == "▁";
    let refused = |what: &str, v: &Json| {
        fail(format!(
            "the SentencePiece-style tokenizer's {what} ({v}) does more than write spaces as `▁` (and one before the text), which is all llama.cpp's tokenizer does"
        ))
    };
    let by_normaliser = match ty(norm).as_deref() {
        None => None,
        Some("Replace") if replace(norm) => Some(false),
        Some("Sequence") => match norm["normalizers"].as_array().map(Vec::as_slice) {
            Some([a, b]) if prepend(a) && replace(b) => Some(true),
            Some([a]) if replace(a) => Some(false),
            _ => return Err(refused("normaliser", norm)),
        },
        Some(_) => return Err(refused("normaliser", norm)),
    };
    match (by_normaliser, ty(pre).as_deref()) {
        (Some(p), None) => Ok(p),
        (Some(p), Some("Split")) if pre["pattern"]["String"] == " " => Ok(p),
        (None, Some("Metaspace")) if pre["replacement"] == "▁" && pre["split"] == false => {
            match pre["prepend_scheme"].as_str() {
                Some("always" | "first") => Ok(true),
                Some("never") => Ok(false),
                _ => Err(refused("pre-tokenizer", pre)),
            }
        }
        (None, None) => Err(fail(
            "the SentencePiece-style tokenizer leaves spaces as they are: llama.cpp's tokenizer writes them as `▁`",
        )),
        _ => Err(refused("pre-tokenizer", pre)),
    }
}

/// A SentencePiece-style BPE with byte fallback (Llama 2, Mistral, Phi-3-mini, Gemma) as
/// llama.cpp's `llama` tokenizer. llama.cpp merges, among adjacent pieces, the pair whose
/// concatenation is the token of highest score; the BPE merges the pair whose merge ranks
/// first. They agree when the merges are every split of every piece into two pieces, grouped
/// by piece, as transformers' converter writes them from a SentencePiece model: a piece's
/// score is then minus its group's rank. So:
/// 1. spaces as llama.cpp writes them ([`spm_prefix`]), no dropout, no affixes;
/// 2. all 256 byte pieces `<0xNN>`, typed as bytes (llama.cpp falls back to them for
///    characters it has no piece for, as the BPE does);
/// 3. scores from the merges, which must be grouped by piece, with every split of a piece
///    into two pieces among them; else refused.
fn spm(tok: &Tok, json: &Json, vocab_size: usize) -> Result<Vec<(String, Value)>> {
    // 1. The text llama.cpp tokenises and the BPE's options.
    let prefix = spm_prefix(json)?;
    let model = &json["model"];
    let set = |k: &str| model[k].as_str().is_some_and(|s| !s.is_empty());
    if !model["dropout"].is_null() || set("continuing_subword_prefix") || set("end_of_word_suffix")
    {
        return Err(fail(
            "the SentencePiece-style tokenizer uses BPE dropout or word affixes, which llama.cpp's tokenizer has not",
        ));
    }
    // 2. Tokens by id, the byte pieces typed as bytes, the unknown piece as unknown.
    let is_byte = |t: &str| {
        t.len() == 6
            && t.starts_with("<0x")
            && t.ends_with('>')
            && u8::from_str_radix(&t[3..5], 16).is_ok()
    };
    let (tokens, mut types) =
        tokens_by_id(json, vocab_size, |t| if is_byte(t) { BYTE } else { NORMAL })?;
    let vocab: HashMap<&str, usize> = model["vocab"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(t, id)| Some((t.as_str(), usize::try_from(id.as_u64()?).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(b) = (0..=255u8).find(|b| !vocab.contains_key(format!("<0x{b:02X}>").as_str())) {
        return Err(fail(format!(
            "the SentencePiece-style tokenizer has no byte piece <0x{b:02X}>: llama.cpp falls back to all 256 for characters without a piece"
        )));
    }
    let unk = model["unk_token"]
        .as_str()
        .and_then(|u| vocab.get(u).copied());
    if let Some(u) = unk {
        types[u] = UNKNOWN;
    }
    // 3. Scores: minus the rank of the piece's group of merges.
    let merges = merge_pairs(model)?;
    let mut scores = vec![0f32; vocab_size];
    let mut rank: HashMap<String, usize> = HashMap::new();
    let mut last: Option<String> = None;
    for (a, b) in &merges {
        let piece = format!("{a}{b}");
        if last.as_deref() == Some(piece.as_str()) {
            continue;
        }
        let id = *vocab.get(piece.as_str()).ok_or_else(|| {
            fail(format!(
                "merge ({a:?}, {b:?}) makes `{piece}`, which is no piece"
            ))
        })?;
        if rank.contains_key(&piece) {
            return Err(fail(format!(
                "the merges that make `{piece}` are not next to each other: llama.cpp's tokenizer ranks merges by the piece they make, so it would merge in another order"
            )));
        }
        scores[id] = -((rank.len() + 1) as f32);
        rank.insert(piece.clone(), rank.len());
        last = Some(piece);
    }
    let pairs: HashSet<(&str, &str)> = merges
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut pieces: Vec<&str> = vocab.keys().copied().collect();
    pieces.sort_unstable();
    for piece in pieces {
        for (l, r) in two_piece_splits(piece, |t| vocab.contains_key(t)) {
            if !pairs.contains(&(l, r)) {
                return Err(fail(format!(
                    "the pieces `{l}` and `{r}` make the piece `{piece}` but are no merge: llama.cpp's tokenizer would merge them where the BPE does not"
                )));
            }
        }
    }
    let mut md = vec![
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        ("tokenizer.ggml.pre".into(), Value::String("default".into())),
        ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
        (
            "tokenizer.ggml.scores".into(),
            Value::Array(scores.into_iter().map(Value::F32).collect()),
        ),
        (
            "tokenizer.ggml.add_space_prefix".into(),
            Value::Bool(prefix),
        ),
    ];
    if let Some(u) = unk {
        md.push((
            "tokenizer.ggml.unknown_token_id".into(),
            Value::U32(u as u32),
        ));
    }
    md.extend(special_ids(tok, &types)?);
    md.push((
        "tokenizer.ggml.token_type".into(),
        Value::Array(types.into_iter().map(Value::I32).collect()),
    ));
    Ok(md)
}

/// The `tokenizer.ggml.token_type` array of GGUF metadata (tests).
#[cfg(test)]
pub(super) fn token_types(md: &HashMap<String, Value>) -> Vec<i32> {
    md["tokenizer.ggml.token_type"]
        .to_vec()
        .unwrap()
        .iter()
        .map(|v| v.to_i32().unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tokenizer fixture of tests/fixtures/tokenizers (scripts/make_family_fixtures.py
    /// --tokenizers), edited as JSON by `edit`, with end of sequence `eos` and padding 0.
    fn fixture(style: &str, eos: u32, edit: impl Fn(&mut Json)) -> Tok {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tokenizers")
            .join(style)
            .join("tokenizer.json");
        let mut j: Json = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        edit(&mut j);
        let inner = tokenizers::Tokenizer::from_bytes(serde_json::to_vec(&j).unwrap()).unwrap();
        Tok::new(inner, 0, eos)
    }

    fn metadata(tok: &Tok, n: usize) -> HashMap<String, Value> {
        derived_tokenizer(tok, n).unwrap().into_iter().collect()
    }

    #[test]
    fn pre_tokenizers_map_to_llama_cpp_names_or_are_refused() {
        use serde_json::json;
        let split = |re: &str| {
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
            ]})
        };
        let bl = json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": true});
        assert_eq!(pre_name(&bl), Some("gpt-2"));
        assert_eq!(pre_name(&split(QWEN2_REGEX)), Some("qwen2"));
        assert_eq!(pre_name(&split(LLAMA3_REGEX)), Some("llama-bpe"));
        // Another regex, or a ByteLevel that does not split by itself, splits otherwise.
        assert_eq!(pre_name(&split(r"\p{L}+|\p{N}")), None);
        assert_eq!(
            pre_name(&json!({"type": "ByteLevel", "use_regex": false})),
            None
        );
        let smol = json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, bl
        ]});
        assert_eq!(pre_name(&smol), Some("smollm"));
        // Qwen2.5's own tokenizer.json spells the regex with JSON escapes.
        let qwen: serde_json::Value = serde_json::from_str(
            r#"{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}"#,
        )
        .unwrap();
        let seq = json!({"type": "Sequence", "pretokenizers": [qwen,
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]});
        assert_eq!(pre_name(&seq), Some("qwen2"));
    }

    #[test]
    fn sentencepiece_style_tokenizers_are_written_as_llama_cpps_llama_tokenizer() {
        // Llama 2's layout: <unk> <s> </s>, the 256 byte pieces, then the pieces; 4 ids more
        // in the student than in the tokenizer, written as unused.
        let tok = fixture("llama-spm", 2, |_| {});
        let n = tok.vocab_size() + 4;
        let md = metadata(&tok, n);
        let s = |k: &str| md[k].to_string().unwrap().clone();
        assert_eq!(s("tokenizer.ggml.model"), "llama");
        assert!(md["tokenizer.ggml.add_space_prefix"].to_bool().unwrap());
        assert!(!md["tokenizer.ggml.add_bos_token"].to_bool().unwrap());
        let u32_of = |k: &str| md[k].to_u32().unwrap();
        assert_eq!(
            [
                u32_of("tokenizer.ggml.unknown_token_id"),
                u32_of("tokenizer.ggml.bos_token_id"),
                u32_of("tokenizer.ggml.eos_token_id"),
            ],
            [0, 1, 2]
        );
        let types = token_types(&md);
        assert_eq!(&types[..3], [UNKNOWN, CONTROL, CONTROL]);
        assert!(types[3..259].iter().all(|&t| t == BYTE));
        assert_eq!(&types[n - 4..], [UNUSED; 4]);
        // Scores: a piece made by merges ranks as its first merge; pieces no merge makes
        // (characters, bytes, specials) score 0. `▁a` is the first merge, `▁an` is made by
        // two (`▁a` + `n`, `▁` + `an`) and scores once.
        let tokens: Vec<String> = md["tokenizer.ggml.tokens"]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_string().unwrap().clone())
            .collect();
        let scores: Vec<f32> = md["tokenizer.ggml.scores"]
            .to_vec()
            .unwrap()
            .iter()
            .map(|v| v.to_f32().unwrap())
            .collect();
        let score = |t: &str| scores[tokens.iter().position(|x| x == t).unwrap()];
        assert_eq!(score("▁a"), -1.0);
        assert_eq!(score("e"), 0.0);
        assert_eq!(score("<0x41>"), 0.0);
        let merged: Vec<f32> = scores.iter().copied().filter(|&x| x < 0.0).collect();
        let mut distinct = merged.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), merged.len());
        let multi = tokens
            .iter()
            .zip(&types)
            .filter(|(t, ty)| **ty == NORMAL && t.chars().count() > 1)
            .count();
        assert_eq!(merged.len(), multi);
        // Gemma's layout: no space before the text.
        let gemma = fixture("gemma-spm", 1, |_| {});
        let md = metadata(&gemma, gemma.vocab_size());
        assert!(!md["tokenizer.ggml.add_space_prefix"].to_bool().unwrap());
        assert_eq!(md["tokenizer.ggml.unknown_token_id"].to_u32().unwrap(), 3);
        assert_eq!(md["tokenizer.ggml.bos_token_id"].to_u32().unwrap(), 2);
        // A Metaspace pre-tokenizer instead of the normaliser says the same.
        let meta = fixture("llama-spm", 2, |j| {
            j["normalizer"] = Json::Null;
            j["pre_tokenizer"] = json!({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false});
        });
        assert!(
            metadata(&meta, n)["tokenizer.ggml.add_space_prefix"]
                .to_bool()
                .unwrap()
        );
    }

    #[test]
    fn sentencepiece_style_tokenizers_llama_cpp_would_merge_otherwise_are_refused() {
        let err = |edit: &dyn Fn(&mut Json)| {
            let tok = fixture("llama-spm", 2, edit);
            derived_tokenizer(&tok, tok.vocab_size())
                .unwrap_err()
                .to_string()
        };
        // The merge (`▁`, `an`) taken out of the merges.
        let take = |j: &mut Json| {
            let m = j["model"]["merges"].as_array_mut().unwrap();
            let i = m.iter().position(|x| x == &json!(["▁", "an"])).unwrap();
            m.remove(i)
        };
        // A split of a piece into two pieces that is no merge: llama.cpp would merge it.
        let e = err(&|j| {
            take(j);
        });
        assert!(
            e.contains("`▁` and `an` make the piece `▁an` but are no merge"),
            "{e}"
        );
        // Merges of one piece apart: llama.cpp ranks by the piece.
        let e = err(&|j| {
            let x = take(j);
            j["model"]["merges"].as_array_mut().unwrap().push(x);
        });
        assert!(
            e.contains("merges that make `▁an` are not next to each other"),
            "{e}"
        );
        // A missing byte piece, a normaliser beyond spaces, spaces left as they are.
        let e = err(&|j| {
            let v = j["model"]["vocab"].as_object_mut().unwrap();
            let id = v.remove("<0x41>").unwrap();
            v.insert("<0x41x".into(), id);
        });
        assert!(e.contains("no byte piece <0x41>"), "{e}");
        let e = err(&|j| j["normalizer"] = json!({"type": "Lowercase"}));
        assert!(e.contains("normaliser") && e.contains("Lowercase"), "{e}");
        let e = err(&|j| j["normalizer"] = Json::Null);
        assert!(e.contains("leaves spaces as they are"), "{e}");
        let e = err(&|j| j["model"]["dropout"] = json!(0.1));
        assert!(e.contains("dropout"), "{e}");
    }
}
