//! Parsers of recorded-rationale formats, one file per format.

pub mod zscot_log;
