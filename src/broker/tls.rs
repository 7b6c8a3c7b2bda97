//! TLS for both ends: the client's trust (bundled web roots, the system
//! store, `--ca-cert` files) and client certificate, the embedded broker's
//! server certificate and client CA (spec §1.1: TLS ≥ 1.2, AEAD suites only,
//! mtls verifies the client against `AA_TLS_CLIENT_CA`), and the words for
//! what went wrong in a handshake.
//!
//! Everything uses rustls with the `ring` provider, passed explicitly, so no
//! process-wide default has to be installed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{AlertDescription, CertificateError, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A PEM file that could not be used, named so the user can fix it.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    #[error("{what} {}: cannot read it: {reason}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{what} {}: {reason}", path.display())]
    Invalid {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{0}")]
    Usage(String),
}

/// How the client trusts brokers and proves itself to an mtls one.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// Extra CA certificates (PEM files, each with one or more).
    pub ca_files: Vec<PathBuf>,
    /// Client certificate chain and its key, for mtls brokers.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl ClientTls {
    pub fn presents_certificate(&self) -> bool {
        self.client_cert.is_some()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let bytes = std::fs::read(path).map_err(|e| TlsFileError::Read {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let invalid = |reason: String| TlsFileError::Invalid {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(
            "holds no certificate (expected PEM blocks starting with -----BEGIN CERTIFICATE-----)"
                .into(),
        ));
    }
    Ok(certs)
}

fn read_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    let bytes = std::fs::read(path).map_err(|e| TlsFileError::Read {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsFileError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: format!("holds no usable private key (expected PEM PKCS#8, PKCS#1 or SEC1; {e})"),
    })
}

fn ca_store(
    what: &'static str,
    files: &[PathBuf],
    store: &mut RootCertStore,
) -> Result<(), TlsFileError> {
    for path in files {
        for cert in read_certs(what, path)? {
            store.add(cert).map_err(|e| TlsFileError::Invalid {
                what,
                path: path.clone(),
                reason: format!("a certificate in it cannot be a trust anchor ({e})"),
            })?;
        }
    }
    Ok(())
}

/// The client's TLS configuration: the bundled web roots, the system's
/// store (where it can be read), and the given CA files; the client
/// certificate when one is given. HTTP/1.1 only, as the client speaks.
pub fn client_config(opts: &ClientTls) -> Result<rustls::ClientConfig, TlsFileError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // An unreadable system store is not an error: the bundled roots and the
    // --ca-cert files still apply.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    ca_store("CA certificate", &opts.ca_files, &mut roots)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsFileError::Usage(format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    let mut cfg = match (&opts.client_cert, &opts.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs("client certificate", cert)?;
            let key_der = read_key("client key", key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| TlsFileError::Invalid {
                    what: "client key",
                    path: key.clone(),
                    reason: format!(
                        "does not fit the client certificate {} ({e})",
                        cert.display()
                    ),
                })?
        }
        (Some(_), None) => {
            return Err(TlsFileError::Usage(
                "--client-cert needs --client-key (or CHAINVIEW_CLIENT_KEY) too".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(TlsFileError::Usage(
                "--client-key needs --client-cert (or CHAINVIEW_CLIENT_CERT) too".into(),
            ));
        }
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The embedded broker's TLS: a certificate chain and key, and with a
/// client CA, mtls (a client certificate is required and verified).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// A loaded server configuration, and the host name to print in the URL.
pub struct LoadedServer {
    pub config: Arc<rustls::ServerConfig>,
    /// The leaf certificate, to tell which name clients should connect by.
    pub leaf: CertificateDer<'static>,
}

impl std::fmt::Debug for LoadedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedServer").finish_non_exhaustive()
    }
}

/// Loads the server side: TLS 1.2 and 1.3 only, rustls's suites (all
/// AEAD), HTTP/1.1 by ALPN.
pub fn server_config(opts: &ServerTls) -> Result<LoadedServer, TlsFileError> {
    let chain = read_certs("TLS certificate", &opts.cert)?;
    let key = read_key("TLS key", &opts.key)?;
    let leaf = chain[0].clone();
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsFileError::Usage(format!("TLS setup failed: {e}")))?;
    let builder = match &opts.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            ca_store("client CA", std::slice::from_ref(ca), &mut roots)?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| TlsFileError::Invalid {
                what: "client CA",
                path: ca.clone(),
                reason: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsFileError::Invalid {
            what: "TLS key",
            path: opts.key.clone(),
            reason: format!("does not fit the certificate {} ({e})", opts.cert.display()),
        })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(LoadedServer {
        config: Arc::new(cfg),
        leaf,
    })
}

/// Whether `leaf` is valid for `name` (an IP address or a DNS name).
pub fn certificate_names(leaf: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(server_name) = ServerName::try_from(name.to_string()) else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&server_name).is_ok()
}

/// What went wrong in a TLS exchange, in a form a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The broker's certificate chains to no trusted CA.
    UntrustedIssuer,
    /// The certificate is for other names (those it holds).
    NameMismatch { presented: Vec<String> },
    /// The certificate's validity ended.
    Expired,
    /// The broker asked for a client certificate and none was given.
    ClientCertificateRequired,
    /// The broker refused the client certificate that was given.
    ClientCertificateRefused { alert: String },
    /// `https://` to a broker that speaks plain HTTP.
    NotTls,
    /// `http://` to a broker that speaks only TLS.
    TlsOnly,
    /// Anything else the handshake reported.
    Other,
}

impl TlsFailure {
    /// The sentence for the user; `host` is the name the URL used.
    pub fn explain(&self, host: &str, raw: &str) -> String {
        match self {
            TlsFailure::UntrustedIssuer => format!(
                "certificate from an untrusted issuer: pass the CA with --ca-cert FILE \
                 (or SSL_CERT_FILE) ({raw})"
            ),
            TlsFailure::NameMismatch { presented } if presented.is_empty() => format!(
                "its certificate is not valid for '{host}'; connect by a name the certificate holds ({raw})"
            ),
            TlsFailure::NameMismatch { presented } => format!(
                "its certificate is for {}, not '{host}'; connect by one of those names",
                presented.join(", ")
            ),
            TlsFailure::Expired => format!("its certificate has expired ({raw})"),
            TlsFailure::ClientCertificateRequired => "the broker asks for a client certificate \
                 (mtls): pass --client-cert FILE --client-key FILE \
                 (or CHAINVIEW_CLIENT_CERT / CHAINVIEW_CLIENT_KEY)"
                .to_string(),
            TlsFailure::ClientCertificateRefused { alert } => format!(
                "the broker refused the client certificate ({alert}); it must be signed by \
                 the CA the broker trusts for clients (AA_TLS_CLIENT_CA)"
            ),
            TlsFailure::NotTls => format!(
                "the broker answered in plain HTTP, not TLS; use http://{host}… or point at its TLS port"
            ),
            TlsFailure::TlsOnly => {
                format!("the broker speaks only HTTPS on this port; use https://{host}…")
            }
            TlsFailure::Other => raw.to_string(),
        }
    }
}

/// Finds a rustls error in an error's chain (also inside `io::Error`s,
/// whose `source` skips what they wrap) and says what it means.
pub fn classify(
    err: &(dyn std::error::Error + 'static),
    sent_client_cert: bool,
) -> Option<TlsFailure> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(from_rustls(r, sent_client_cert));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(r) = inner.downcast_ref::<rustls::Error>() {
                return Some(from_rustls(r, sent_client_cert));
            }
            if let Some(found) = classify(inner, sent_client_cert) {
                return Some(found);
            }
        }
        cur = e.source();
    }
    None
}

fn from_rustls(e: &rustls::Error, sent_client_cert: bool) -> TlsFailure {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                TlsFailure::UntrustedIssuer
            }
            CertificateError::NotValidForName => TlsFailure::NameMismatch { presented: vec![] },
            CertificateError::NotValidForNameContext { presented, .. } => {
                TlsFailure::NameMismatch {
                    presented: presented.clone(),
                }
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                TlsFailure::Expired
            }
            _ => TlsFailure::Other,
        },
        E::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => TlsFailure::ClientCertificateRequired,
            AlertDescription::HandshakeFailure if !sent_client_cert => {
                TlsFailure::ClientCertificateRequired
            }
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::DecryptError
            | AlertDescription::AccessDenied
            | AlertDescription::UnsupportedCertificate
                if sent_client_cert =>
            {
                TlsFailure::ClientCertificateRefused {
                    alert: alert_words(*alert),
                }
            }
            _ => TlsFailure::Other,
        },
        E::InvalidMessage(_) => TlsFailure::NotTls,
        _ => TlsFailure::Other,
    }
}

fn alert_words(a: AlertDescription) -> String {
    match a {
        AlertDescription::UnknownCA => "unknown CA".into(),
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::CertificateUnknown => "certificate unknown".into(),
        AlertDescription::CertificateExpired => "certificate expired".into(),
        AlertDescription::CertificateRevoked => "certificate revoked".into(),
        AlertDescription::DecryptError => "signature did not verify".into(),
        AlertDescription::AccessDenied => "access denied".into(),
        AlertDescription::UnsupportedCertificate => {
            "unsupported certificate: is it made for client authentication?".into()
        }
        other => format!("{other:?}"),
    }
}

/// What Go's HTTP server answers when plain HTTP reaches its TLS port (the
/// real broker's behaviour; the embedded broker sends the same).
pub const GO_PLAIN_HTTP_TO_TLS: &str = "Client sent an HTTP request to an HTTPS server.";
