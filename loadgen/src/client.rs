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
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("loadgen/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .tls_danger_accept_invalid_certs(reach.insecure);
    if let Some(path) = &reach.ca_cert {
        let pem = std::fs::read(path)
            .with_context(|| format!("--ca-cert / tls.ca_cert: cannot read {}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!(
                "--ca-cert / tls.ca_cert: {} is not a PEM bundle of certificates",
                path.display()
            )
        })?;
        if certs.is_empty() {
            anyhow::bail!(
                "--ca-cert / tls.ca_cert: {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            );
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .context("the HTTP client could not be built")
}
