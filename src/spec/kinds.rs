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
    Ifd,
    Superfilter,
    Grape,
    Rsr,
    Shortest,
    Longest,
    AnswerOnly,
}

impl Strategy {
    /// Every strategy, in report order.
    pub const ALL: [Strategy; 14] = [
        Strategy::All,
        Strategy::Random,
        Strategy::Correct,
        Strategy::Dedup,
        Strategy::RdMin,
        Strategy::RdMax,
        Strategy::Morsd,
        Strategy::Ifd,
        Strategy::Superfilter,
        Strategy::Grape,
        Strategy::Rsr,
        Strategy::Shortest,
        Strategy::Longest,
        Strategy::AnswerOnly,
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
            Strategy::Ifd => "ifd",
            Strategy::Superfilter => "superfilter",
            Strategy::Grape => "grape",
            Strategy::Rsr => "rsr",
            Strategy::Shortest => "shortest",
            Strategy::Longest => "longest",
            Strategy::AnswerOnly => "answer-only",
        }
    }

    /// Whether the score stage must measure the response's NLLs and ranks for this strategy
    /// (IFD, Superfiltering, GRAPE, RSR): a score entry of its own, so the other strategies
    /// keep their keys.
    pub fn needs_response_scores(self) -> bool {
        matches!(
            self,
            Strategy::Ifd | Strategy::Superfilter | Strategy::Grape | Strategy::Rsr
        )
    }

    /// Parses the spec spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}
