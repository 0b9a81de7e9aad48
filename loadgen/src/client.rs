//! The one HTTP client of a run: every goose user and the scraper share it
//! (one connection pool, one TLS configuration), with the user's headers
//! on every request. Header values are marked sensitive, so no `Debug`
//! print of a request shows them.

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::path::PathBuf;

/// How the target is reached beyond its URL.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Resolved headers (values expanded: secrets).
    pub headers: Vec<(String, String)>,
    /// A PEM bundle of CAs trusted besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// No certificate verification.
    pub insecure: bool,
}

impl Reach {
    /// The header names, for the report (never the values).
    pub fn header_names(&self) -> Vec<String> {
        self.headers.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// Installs aws-lc-rs as the process's TLS provider, explicitly (reqwest
/// falls back to it only while goose asks for reqwest's default TLS);
/// needed before any HTTP client is built, harmless twice.
pub fn tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The client of a run. An unreadable CA file is an error naming it.
pub fn build(reach: &Reach) -> anyhow::Result<reqwest::Client> {
    tls_provider();
    let mut headers = HeaderMap::new();
    for (name, value) in &reach.headers {
        let n = HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("header {name}: not a header name"))?;
        // The value is not quoted in the error: it may be a secret.
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            anyhow::anyhow!(
                "header {name}: its value holds a character a header cannot carry (a line break or a control character)"
            )
        })?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    reqwest::Client::builder()
        .user_agent(concat!("loadgen/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        // Where each request's time goes: name resolution, the connect
        // and the TLS handshake, stamped (`crate::phases`).
        .dns_resolver(std::sync::Arc::new(crate::phases::Resolver))
        .connector_layer(crate::phases::Connect)
        .tls_backend_preconfigured(tls_config(reach)?)
        .build()
        .context("the HTTP client could not be built")
}

/// The TLS configuration reqwest would build from the same settings (the
/// platform's roots and any `--ca-cert`, or no verification with
/// `--insecure`; HTTP/1.1), with the session store that stamps each
/// handshake's start.
fn tls_config(reach: &Reach) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS provider offers no TLS version")?
        .dangerous();
    let builder = if reach.insecure {
        builder.with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    } else {
        let extra = match &reach.ca_cert {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).with_context(|| {
                    format!("--ca-cert / tls.ca_cert: cannot read {}", path.display())
                })?;
                let certs = CertificateDer::pem_slice_iter(&pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "--ca-cert / tls.ca_cert: {} is not a PEM bundle of certificates ({e})",
                            path.display()
                        )
                    })?;
                if certs.is_empty() {
                    anyhow::bail!(
                        "--ca-cert / tls.ca_cert: {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                        path.display()
                    );
                }
                certs
            }
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .context("the platform's certificate verifier could not be set up")?;
        builder.with_custom_certificate_verifier(Arc::new(verifier))
    };
    let mut config = builder.with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption =
        rustls::client::Resumption::store(Arc::new(crate::phases::SessionStore::new(Arc::new(
            rustls::client::ClientSessionMemoryCache::new(256),
        ))));
    Ok(config)
}

/// `--insecure`: any certificate is accepted; the handshake's signatures
/// are still checked (they prove nothing without a trusted certificate,
/// but a broken handshake stays broken).
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
