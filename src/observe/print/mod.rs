//! The reconstruction printed headless (`chainview observe --print`), one
//! file per format; the diagrams are in `crate::diagram`.

pub mod json;
pub mod text;
