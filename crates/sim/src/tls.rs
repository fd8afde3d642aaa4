//! TLS for `--tls`: a certificate authority minted at start, written to a file clients trust,
//! and a server certificate it signs for 127.0.0.1, ::1 and localhost. ALPN offers HTTP/2 and
//! HTTP/1.1.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SimError;

/// Mints the CA and server certificate, writes the CA's PEM to `ca_file`, and returns the
/// server's TLS configuration.
pub fn server_config(ca_file: &Path) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).map_err(SimError::MintCertificate)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "skillsync simulator local CA");
    let ca_key = KeyPair::generate().map_err(SimError::MintCertificate)?;
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(SimError::MintCertificate)?;

    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(SimError::MintCertificate)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().map_err(SimError::MintCertificate)?;
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .map_err(SimError::MintCertificate)?;

    if let Some(dir) = ca_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SimError::CreateCaDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(ca_file, ca.pem()).map_err(|source| SimError::WriteCa {
        path: ca_file.to_path_buf(),
        source,
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(SimError::TlsConfig)?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .map_err(SimError::TlsConfig)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
