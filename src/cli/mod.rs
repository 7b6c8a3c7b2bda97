//! The binary's commands, one file each where they are more than a
//! dispatch line: the composition root stays in main.rs.

pub(crate) mod broker;
pub(crate) mod context;
pub(crate) mod judge;
pub(crate) mod observe;
pub(crate) mod script;
