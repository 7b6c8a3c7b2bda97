//! `check`'s reports, one file per format (text, SARIF 2.1.0, Markdown;
//! JSON lines are the findings themselves). Each renders to a string: no I/O.

pub mod markdown;
pub mod sarif;
pub mod text;
