//! Speaking AgentWrit: the wire types, the async client, and an embedded
//! wire-compatible broker.

pub mod client;
pub mod embedded;
pub mod tls;
pub mod types;

pub use client::{BrokerClient, BrokerError, ClientError};
