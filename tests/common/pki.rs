//! Certificates made for one test (rcgen), written to a temporary directory:
//! no private key is ever checked in.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A CA with a server certificate for 127.0.0.1 and localhost, and a client
/// certificate it signed; more certificates on demand.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    pub ca_pem: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca("chainview test CA");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, ca.pem()).unwrap();
        let mut pki = Pki {
            dir,
            ca,
            ca_pem,
            server_cert: PathBuf::new(),
            server_key: PathBuf::new(),
            client_cert: PathBuf::new(),
            client_key: PathBuf::new(),
        };
        (pki.server_cert, pki.server_key) =
            pki.server("server", &["127.0.0.1", "localhost"], false);
        (pki.client_cert, pki.client_key) = pki.client("client");
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, stem: &str, cert: &str, key: &KeyPair) -> (PathBuf, PathBuf) {
        let c = self.dir.path().join(format!("{stem}.pem"));
        let k = self.dir.path().join(format!("{stem}.key"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    /// A server certificate this CA signed, for `names`; `expired`: its
    /// validity ended in 2020.
    pub fn server(&self, stem: &str, names: &[&str], expired: bool) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        self.write(stem, &cert.pem(), &key)
    }

    /// A client certificate this CA signed.
    pub fn client(&self, stem: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        self.write(stem, &cert.pem(), &key)
    }

    /// A client certificate from another CA, which this broker does not trust.
    pub fn stranger_client(&self) -> (PathBuf, PathBuf) {
        let other = ca("someone else's CA");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "stranger");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &other).unwrap();
        self.write("stranger", &cert.pem(), &key)
    }
}
