//! chainview: a terminal explorer for AgentWrit delegation chains.
//!
//! The library holds the AgentWrit core (scope rule, token decoding, broker
//! client and an embedded wire-compatible broker); the binary wires it to a CLI.

pub mod app;
pub mod broker;
pub mod config;
pub mod diagram;
pub mod export;
pub mod judge;
pub mod judging;
pub mod jwt;
pub mod logging;
pub mod observe;
pub mod protocol;
pub mod rules;
pub mod scenario;
pub mod scope;
pub mod session;
pub mod text;
pub mod tui;
pub mod ui;
pub mod view;
pub mod watch;
pub mod worker;
