//! TLS termination through rustls (ring provider) with PEM files, one certificate per server
//! block chosen by SNI.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::ServerError;
use crate::config::TlsFiles;

fn load_key(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, ServerError> {
    let fail = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        ServerError::Tls(format!("{}: {e}", what.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| fail(&files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&files.cert, &e))?;
    if certs.is_empty() {
        return Err(fail(&files.cert, &"no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| fail(&files.key, &e))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| fail(&files.key, &e))
}

/// Picks the certificate whose server names match the SNI name (exact, case-insensitive,
/// or a leading `*.` wildcard); the first one when none matches or no name was sent.
#[derive(Debug)]
struct SniResolver {
    keys: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && {
                let (head, tail) = host.split_at(host.len() - suffix.len());
                tail.eq_ignore_ascii_case(suffix) && head.ends_with('.')
            }
        }
        None => pattern.eq_ignore_ascii_case(host),
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let by_name = hello.server_name().and_then(|sni| {
            self.keys
                .iter()
                .find(|(names, _)| names.iter().any(|n| name_matches(n, sni)))
        });
        by_name.or(self.keys.first()).map(|(_, k)| Arc::clone(k))
    }
}

/// Builds a rustls server configuration for the servers of one listening address, each
/// given as its `server_name` list and PEM files (certificate chain; private key as
/// PKCS#8, PKCS#1 or SEC1): the certificate is chosen by SNI, the first server's is the
/// default. Ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`.
///
/// # Errors
///
/// [`ServerError::Tls`] naming the file when it cannot be read, holds no certificate or
/// key, or the key does not match the certificate; also for an empty `servers`.
pub fn tls_config_for(
    servers: &[(&[String], &TlsFiles)],
) -> Result<rustls::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut keys = Vec::new();
    for (names, files) in servers {
        keys.push((names.to_vec(), Arc::new(load_key(files, &provider)?)));
    }
    if keys.is_empty() {
        return Err(ServerError::Tls("no certificate configured".into()));
    }
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { keys }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A rustls server configuration with one certificate (see [`tls_config_for`]).
///
/// # Errors
///
/// As [`tls_config_for`].
pub fn load_tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ServerError> {
    tls_config_for(&[(&[], files)])
}
