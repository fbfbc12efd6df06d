//! The spec's closed vocabularies, parsed from their spellings: the synthetic task families
//! and the selection strategies. Every floor names them, so they live beside the schema.

/// A synthetic task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// Multi-step arithmetic word problems; numeric answer.
    Arithmetic,
    /// Concatenate the last letters of the words; free-text answer.
    LastLetter,
    /// Is the coin still heads up after some people flip it; yes/no answer.
    CoinFlip,
}

impl TaskKind {
    /// Parses a synthetic task name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "arithmetic" => Some(Self::Arithmetic),
            "last-letter" => Some(Self::LastLetter),
            "coin-flip" => Some(Self::CoinFlip),
            _ => None,
        }
    }
}

/// A selection strategy (one module each under `select/`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    All,
    Random,
    Correct,
    Dedup,
    RdMin,
    RdMax,
    Morsd,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 7] = [
        Strategy::All,
        Strategy::Random,
        Strategy::Correct,
        Strategy::Dedup,
        Strategy::RdMin,
        Strategy::RdMax,
        Strategy::Morsd,
    ];

    /// The spec spelling.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::All => "all",
            Strategy::Random => "random",
            Strategy::Correct => "correct",
            Strategy::Dedup => "dedup",
            Strategy::RdMin => "rd-min",
            Strategy::RdMax => "rd-max",
            Strategy::Morsd => "morsd",
        }
    }

    /// Parses the spec spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}
