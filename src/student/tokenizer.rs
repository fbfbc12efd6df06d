//! The student's tokenizer: byte-level BPE trained with the `tokenizers` crate on the
//! experiment's own text, saved as `tokenizer.json` beside the model.

use crate::error::{Error, Result};
use std::path::Path;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

/// Padding token (id 0).
pub const PAD: &str = "<pad>";
/// End of sequence (id 1).
pub const EOS: &str = "<eos>";

/// Sidecar of `tokenizer.json` with the special ids.
const SPECIAL_FILE: &str = "special_tokens.json";

/// A trained tokenizer with its special ids.
#[derive(Clone)]
pub struct Tok {
    /// The `tokenizers` tokenizer.
    pub inner: Tokenizer,
    /// Padding id.
    pub pad: u32,
    /// End-of-sequence id.
    pub eos: u32,
}

impl Tok {
    /// Trains a byte-level BPE of `vocab_size` on `texts`.
    pub fn train<'a>(
        texts: impl Iterator<Item = &'a str> + Send,
        vocab_size: usize,
    ) -> Result<Self> {
        let err = |e: tokenizers::Error| Error::run(format!("tokenizer training: {e}"));
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![
                AddedToken::from(PAD, true),
                AddedToken::from(EOS, true),
            ])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tk = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            ByteLevel,
            PostProcessorWrapper,
            ByteLevel,
        >::new()
        .with_model(BPE::default())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(None)
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .map_err(err)?;
        tk.train(&mut trainer, texts).map_err(err)?;
        Self::from_tokenizer(Tokenizer::from(tk))
    }

    /// A tokenizer with explicit padding and end-of-sequence ids (pretrained checkpoints).
    pub fn new(inner: Tokenizer, pad: u32, eos: u32) -> Self {
        Tok { inner, pad, eos }
    }

    fn from_tokenizer(inner: Tokenizer) -> Result<Self> {
        let pad = inner
            .token_to_id(PAD)
            .ok_or_else(|| Error::run("tokenizer has no <pad>"))?;
        let eos = inner
            .token_to_id(EOS)
            .ok_or_else(|| Error::run("tokenizer has no <eos>"))?;
        Ok(Tok { inner, pad, eos })
    }

    /// Loads `tokenizer.json`; the special ids come from the `special_tokens.json` beside it
    /// when there is one (pretrained tokenizers), else from the `<pad>`/`<eos>` tokens.
    pub fn load(path: &Path) -> Result<Self> {
        let inner = Tokenizer::from_file(path).map_err(|e| Error::Input {
            path: path.to_path_buf(),
            message: format!("not a tokenizer.json: {e}"),
        })?;
        let side = path.with_file_name(SPECIAL_FILE);
        if side.exists() {
            let text = std::fs::read_to_string(&side).map_err(|e| Error::io(&side, e))?;
            let ids: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Input {
                path: side.clone(),
                message: format!("not JSON: {e}"),
            })?;
            let id = |k: &str| {
                ids.get(k)
                    .and_then(serde_json::Value::as_u64)
                    .map(|x| x as u32)
                    .ok_or_else(|| Error::Input {
                        path: side.clone(),
                        message: format!("`{k}` missing"),
                    })
            };
            return Ok(Tok::new(inner, id("pad")?, id("eos")?));
        }
        Self::from_tokenizer(inner)
    }

    /// Saves `tokenizer.json` and, beside it, `special_tokens.json` with the special ids.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner
            .save(path, false)
            .map_err(|e| Error::run(format!("{}: {e}", path.display())))?;
        let side = path.with_file_name(SPECIAL_FILE);
        std::fs::write(
            &side,
            serde_json::json!({"pad": self.pad, "eos": self.eos}).to_string(),
        )
        .map_err(|e| Error::io(&side, e))
    }

    /// Vocabulary size including the special tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text` (no special tokens added).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, true).unwrap_or_default()
    }
}

/// The ways to write `piece` as two pieces of a vocabulary (`is_piece`), split left to right:
/// SentencePiece's merges. A `llama` GGUF's merges are rebuilt from them
/// ([`crate::student::checkpoint`]) and an export to one is checked against them, so both sides
/// use this one rule.
pub fn two_piece_splits<'a>(
    piece: &'a str,
    is_piece: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    piece
        .char_indices()
        .skip(1)
        .map(|(i, _)| piece.split_at(i))
        .filter(move |(l, r)| is_piece(l) && is_piece(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trains_and_round_trips() {
        let texts = [
            "Ann has 3 apples. The answer is 7.",
            "Bob gives away 2 coins. The answer is 5.",
        ]
        .repeat(20);
        let tok = Tok::train(texts.iter().copied(), 300).unwrap();
        assert_eq!((tok.pad, tok.eos), (0, 1));
        let s = "Q: Zed has 19 marbles.\nA: 19 + 4 = 23. The answer is 23.";
        assert_eq!(tok.decode(&tok.encode(s)), s);
        let dir = tempfile::tempdir().unwrap();
        tok.save(&dir.path().join("tokenizer.json")).unwrap();
        let back = Tok::load(&dir.path().join("tokenizer.json")).unwrap();
        assert_eq!(back.encode(s), tok.encode(s));
    }
}
