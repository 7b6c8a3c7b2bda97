//! Choosing the broker: the embedded one (started on loopback) when nothing is
//! configured, or an external broker from `--broker` / the environment.

use std::time::Duration;

use ed25519_dalek::VerifyingKey;

use crate::broker::embedded::{Config, EmbeddedBroker, StartError};
use crate::broker::tls::ClientTls;
use crate::broker::{BrokerClient, ClientError};
use crate::config::ContextLabel;
use crate::worker::{Secret, WorkerConfig};

/// Where the broker is and how to authenticate, before connecting.
#[derive(Clone, Default)]
pub struct Settings {
    /// `None`: start the embedded broker.
    pub broker_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub admin_secret: Option<String>,
    pub timeout: Option<Duration>,
    /// CA files and client certificate for a TLS / mtls broker.
    pub tls: ClientTls,
    /// How much one reading of the audit trail may take.
    pub audit_cap: crate::worker::ReadCap,
    /// The context these came from (`--context`), for the status bar.
    pub context: Option<ContextLabel>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("broker_url", &self.broker_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("admin_secret", &self.admin_secret.as_ref().map(|_| "…"))
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .field("audit_cap", &self.audit_cap)
            .field("context", &self.context)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error(
        "the broker at {url} needs app credentials: set AGENTWRIT_CLIENT_ID and AGENTWRIT_CLIENT_SECRET"
    )]
    NoCredentials { url: String },
}

/// A broker to talk to, and what the worker needs for it.
pub struct Target {
    pub url: String,
    /// Keeps the embedded broker alive for the session.
    pub embedded: Option<EmbeddedBroker>,
    pub worker: WorkerConfig,
    /// Known for the embedded broker: signatures can be verified offline.
    pub key: Option<VerifyingKey>,
    /// The context (`--context`) the broker came from.
    pub context: Option<ContextLabel>,
}

impl Target {
    /// One line saying which broker this is.
    pub fn describe(&self) -> String {
        if self.embedded.is_some() {
            format!(
                "embedded AgentWrit broker (wire-compatible with v2.0.0) on {}",
                self.url
            )
        } else {
            match &self.context {
                Some(c) if c.production => {
                    format!(
                        "AgentWrit broker at {} (context {}, production)",
                        self.url, c.name
                    )
                }
                Some(c) => format!("AgentWrit broker at {} (context {})", self.url, c.name),
                None => format!("AgentWrit broker at {}", self.url),
            }
        }
    }

    pub fn has_admin(&self) -> bool {
        self.worker.admin_secret.is_some()
    }

    /// Stops the embedded broker, if any.
    pub async fn shutdown(self) {
        if let Some(b) = self.embedded {
            b.shutdown().await;
        }
    }
}

/// Starts the embedded broker or prepares a client for the configured one.
pub async fn connect(s: &Settings) -> Result<Target, SessionError> {
    let timeout = s.timeout.unwrap_or(crate::broker::client::DEFAULT_TIMEOUT);
    match &s.broker_url {
        None => {
            let broker = EmbeddedBroker::start(Config::default()).await?;
            let url = broker.url();
            let client = BrokerClient::with_timeout(&url, timeout)?;
            Ok(Target {
                worker: WorkerConfig {
                    client,
                    admin_secret: Some(Secret(broker.admin_secret().to_string())),
                    app_credentials: None,
                    audit_cap: s.audit_cap,
                },
                key: Some(broker.public_key()),
                url,
                embedded: Some(broker),
                context: None,
            })
        }
        Some(url) => {
            let client = BrokerClient::with_tls(url, timeout, &s.tls)?;
            let creds = match (&s.client_id, &s.client_secret) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                    Some((id.clone(), Secret(secret.clone())))
                }
                _ => None,
            };
            let admin = s.admin_secret.clone().filter(|a| !a.is_empty()).map(Secret);
            if creds.is_none() && admin.is_none() {
                return Err(SessionError::NoCredentials { url: url.clone() });
            }
            Ok(Target {
                url: client.base_url().to_string(),
                embedded: None,
                worker: WorkerConfig {
                    client,
                    admin_secret: admin,
                    app_credentials: creds,
                    audit_cap: s.audit_cap,
                },
                key: None,
                context: s.context.clone(),
            })
        }
    }
}
