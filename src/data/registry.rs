//! Every real task morsd knows: where its benchmark file is under the data root, its answer
//! type, the split schemes and the recorded-rationale sources that exist for it.

use crate::answer::AnswerType;

/// How a task's benchmark file is laid out (one loader per layout in [`super::tasks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// SVAMP `{ID, Body, Question, Equation, Answer}`.
    Svamp,
    /// MAWPS-style `{iIndex, sQuestion, lSolutions}` (MultiArith, AddSub, SingleEq).
    Mawps,
    /// GSM8K JSON lines `{question, answer}` with the answer after `####` (train + test files).
    Gsm8k,
    /// AQuA JSON lines `{question, options, correct}`.
    Aqua,
    /// CommonsenseQA JSON lines (train + dev files).
    Csqa,
    /// `{"examples": [{question, answer}]}` (coin flip, last letters).
    Examples,
    /// BIG-bench `{"examples": [{input, target_scores}]}`; yes/no when the scores are Yes/No,
    /// else multiple choice over the score keys.
    BigBench,
}

/// A source of recorded rationales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// MCC-KD multi-rationale JSON (`svamp-gpt35-multi/train.json`).
    MccKd,
    /// Fine-tune-CoT completion JSON (`fine-tune-cot/completions-davinci002-zs-cot/D_<task>.json`).
    FineTuneCot,
    /// distilling-step-by-step chunk lists (`distill-step-by-step/<task>/llm/train_CoT_*.json`).
    Dsbs,
    /// The zero-shot-CoT logs (`teacher-logs-davinci002/<task>_zero_shot_cot.log`).
    ZscotLog,
}

/// A named rationale source of a task.
#[derive(Debug, Clone, Copy)]
pub struct SourceDef {
    /// Name used in specs (`teacher.sources`).
    pub name: &'static str,
    /// Format.
    pub format: SourceFormat,
    /// Path under the data root (a file, or a folder for `Dsbs`).
    pub path: &'static str,
    /// Teacher model and how it was sampled.
    pub about: &'static str,
}

/// A split scheme of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitScheme {
    /// Fine-tune-CoT's 70/30 index split (`fine-tune-cot/split/<name>__default.json`).
    FineTuneCot(&'static str),
    /// MCC-KD's SVAMP split 700/150/150 (`svamp-gpt35-multi/{train,dev,test}.json`).
    MccKd,
    /// distilling-step-by-step's split (`distill-step-by-step/<dir>/<dir>_{train,test}.json`).
    Dsbs(&'static str),
    /// GSM8K's own train/test files.
    Gsm8k,
}

impl SplitScheme {
    /// Name used in specs (`data.split`).
    pub fn name(self) -> &'static str {
        match self {
            SplitScheme::FineTuneCot(_) => "fine-tune-cot",
            SplitScheme::MccKd => "mcc-kd",
            SplitScheme::Dsbs(_) => "distill-step-by-step",
            SplitScheme::Gsm8k => "gsm8k",
        }
    }
}

/// A real task.
#[derive(Debug, Clone, Copy)]
pub struct TaskDef {
    /// Name used in specs (`data.task`).
    pub name: &'static str,
    /// arithmetic, commonsense or symbolic.
    pub family: &'static str,
    /// How answers are read.
    pub answer: AnswerType,
    /// Benchmark layout.
    pub layout: Layout,
    /// Benchmark file(s) under the data root (GSM8K and CommonsenseQA: train then test/dev).
    pub files: &'static [&'static str],
    /// Split schemes, the first is the default.
    pub splits: &'static [SplitScheme],
    /// Rationale sources.
    pub sources: &'static [SourceDef],
}

const ZS: &str = "text-davinci-002 zero-shot-CoT, greedy, 1 per item (Kojima et al. 2022 logs)";
const FTC: &str = "text-davinci-002 zero-shot-CoT, greedy, 1 per item (Fine-tune-CoT)";

macro_rules! src {
    ($name:expr, $fmt:ident, $path:expr, $about:expr) => {
        SourceDef {
            name: $name,
            format: SourceFormat::$fmt,
            path: $path,
            about: $about,
        }
    };
}

/// Every real task.
pub const TASKS: &[TaskDef] = &[
    TaskDef {
        name: "svamp",
        family: "arithmetic",
        answer: AnswerType::Number,
        layout: Layout::Svamp,
        files: &["benchmarks/SVAMP/SVAMP.json"],
        splits: &[
            SplitScheme::MccKd,
            SplitScheme::FineTuneCot("svamp"),
            SplitScheme::Dsbs("svamp"),
        ],
        sources: &[
            src!(
                "gpt35-mcc-kd",
                MccKd,
                "svamp-gpt35-multi/train.json",
                "gpt-3.5-turbo, sampled, 10 per training question (MCC-KD)"
            ),
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_svamp.json",
                FTC
            ),
            src!(
                "palm-dsbs",
                Dsbs,
                "distill-step-by-step/svamp/llm",
                "PaLM-540B few-shot CoT, 1 per item (distilling step-by-step)"
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/svamp_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "gsm8k",
        family: "arithmetic",
        answer: AnswerType::Number,
        layout: Layout::Gsm8k,
        files: &["gsm8k/train.jsonl", "gsm8k/test.jsonl"],
        splits: &[SplitScheme::Gsm8k, SplitScheme::FineTuneCot("gsm8k")],
        sources: &[src!(
            "davinci002-zscot",
            ZscotLog,
            "teacher-logs-davinci002/gsm8k_zero_shot_cot.log",
            ZS
        )],
    },
    TaskDef {
        name: "multiarith",
        family: "arithmetic",
        answer: AnswerType::Number,
        layout: Layout::Mawps,
        files: &["benchmarks/MultiArith/MultiArith.json"],
        splits: &[SplitScheme::FineTuneCot("multiarith")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_multiarith.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/multiarith_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "addsub",
        family: "arithmetic",
        answer: AnswerType::Number,
        layout: Layout::Mawps,
        files: &["benchmarks/AddSub/AddSub.json"],
        splits: &[SplitScheme::FineTuneCot("addsub")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_addsub.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/addsub_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "singleeq",
        family: "arithmetic",
        answer: AnswerType::Number,
        layout: Layout::Mawps,
        files: &["benchmarks/SingleEq/questions.json"],
        splits: &[SplitScheme::FineTuneCot("single_eq")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_single_eq.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/singleeq_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "aqua",
        family: "arithmetic",
        answer: AnswerType::Choice(5),
        layout: Layout::Aqua,
        files: &["benchmarks/AQuA/test.json"],
        splits: &[SplitScheme::FineTuneCot("aqua")],
        sources: &[src!(
            "davinci002-zscot",
            ZscotLog,
            "teacher-logs-davinci002/aqua_zero_shot_cot.log",
            ZS
        )],
    },
    TaskDef {
        name: "commonsense_qa",
        family: "commonsense",
        answer: AnswerType::Choice(5),
        layout: Layout::Csqa,
        files: &[
            "benchmarks/CommonsenseQA/train_rand_split.jsonl",
            "benchmarks/CommonsenseQA/dev_rand_split.jsonl",
        ],
        splits: &[
            SplitScheme::FineTuneCot("commonsense_qa"),
            SplitScheme::Dsbs("cqa"),
        ],
        sources: &[
            src!(
                "palm-dsbs",
                Dsbs,
                "distill-step-by-step/cqa/llm",
                "PaLM-540B few-shot CoT, 1 per item (distilling step-by-step)"
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/commonsensqa_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "strategy_qa",
        family: "commonsense",
        answer: AnswerType::YesNo,
        layout: Layout::BigBench,
        files: &["benchmarks/StrategyQA/task.json"],
        splits: &[SplitScheme::FineTuneCot("strategy_qa")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_strategy_qa.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/strategyqa_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "last_letters",
        family: "symbolic",
        answer: AnswerType::Text,
        layout: Layout::Examples,
        files: &["benchmarks/last_letters/last_letters.json"],
        splits: &[SplitScheme::FineTuneCot("last_letter_concatenation")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_last_letter_concatenation.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/last_letters_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "coin_flip",
        family: "symbolic",
        answer: AnswerType::YesNo,
        layout: Layout::Examples,
        files: &["benchmarks/coin_flip/coin_flip.json"],
        splits: &[SplitScheme::FineTuneCot("coin_flip")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_coin_flip.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/coin_flip_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "date_understanding",
        family: "symbolic",
        answer: AnswerType::Choice(6),
        layout: Layout::BigBench,
        files: &["benchmarks/Bigbench_Date/task.json"],
        splits: &[SplitScheme::FineTuneCot("date_understanding")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_date_understanding.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/date_understanding_zero_shot_cot.log",
                ZS
            ),
        ],
    },
    TaskDef {
        name: "tracking_shuffled_objects",
        family: "symbolic",
        answer: AnswerType::Choice(3),
        layout: Layout::BigBench,
        files: &["benchmarks/Bigbench_object_tracking/task.json"],
        splits: &[SplitScheme::FineTuneCot("tracking_shuffled_objects")],
        sources: &[
            src!(
                "davinci002-ftc",
                FineTuneCot,
                "fine-tune-cot/completions-davinci002-zs-cot/D_tracking_shuffled_objects.json",
                FTC
            ),
            src!(
                "davinci002-zscot",
                ZscotLog,
                "teacher-logs-davinci002/shuffled_objects_zero_shot_cot.log",
                ZS
            ),
        ],
    },
];

impl TaskDef {
    /// The split scheme named `name` (default: the task's first); the error lists the known ones.
    pub fn split(&self, name: Option<&str>) -> Result<SplitScheme, String> {
        let Some(n) = name else {
            return Ok(self.splits[0]);
        };
        self.splits
            .iter()
            .copied()
            .find(|s| s.name() == n)
            .ok_or_else(|| {
                let known: Vec<&str> = self.splits.iter().map(|s| s.name()).collect();
                format!(
                    "task {} has no split `{n}` (known: {})",
                    self.name,
                    known.join(", ")
                )
            })
    }

    /// The names of all the task's rationale sources.
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.to_string()).collect()
    }
}

/// Looks a task up by name.
pub fn task(name: &str) -> Option<&'static TaskDef> {
    TASKS.iter().find(|t| t.name == name)
}
