//! IdP signing certificates.
//!
//! Only the public key of a certificate is used: SAML trust comes from the
//! configured metadata, not from a PKI, so validity dates and issuers are not
//! checked (an IdP rolling its self-signed certificate is the common case).
//! Certificates embedded in a response's `<ds:KeyInfo>` are never trusted;
//! verification uses only the certificates configured here.

use base64::Engine as _;
use openssl::x509::X509;
use sha2::{Digest, Sha256};

/// Why a certificate could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Not a parseable X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Invalid(String),
    /// PEM input without any `CERTIFICATE` block.
    #[error("no certificate found in PEM input")]
    Empty,
    /// The certificate's key is neither RSA nor EC.
    #[error("unsupported public key type in certificate")]
    UnsupportedKey,
}

/// An IdP signing certificate (DER). Construct with [`IdpCertificate::from_der`],
/// [`IdpCertificate::from_pem`] or [`IdpCertificate::from_base64`].
#[derive(Clone, PartialEq, Eq)]
pub struct IdpCertificate {
    der: Vec<u8>,
}

impl std::fmt::Debug for IdpCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpCertificate").field("sha256", &self.sha256_fingerprint()).finish()
    }
}

impl IdpCertificate {
    /// A DER-encoded certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, CertificateError> {
        let cert = X509::from_der(der).map_err(|e| CertificateError::Invalid(e.to_string()))?;
        check_key(&cert)?;
        Ok(Self { der: der.to_vec() })
    }

    /// Every certificate of a PEM bundle (one or more `BEGIN CERTIFICATE` blocks).
    pub fn from_pem(pem: &[u8]) -> Result<Vec<Self>, CertificateError> {
        let certs = X509::stack_from_pem(pem).map_err(|e| CertificateError::Invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(CertificateError::Empty);
        }
        certs
            .iter()
            .map(|cert| {
                check_key(cert)?;
                let der = cert.to_der().map_err(|e| CertificateError::Invalid(e.to_string()))?;
                Ok(Self { der })
            })
            .collect()
    }

    /// Base64 DER as found in `<ds:X509Certificate>` (whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CertificateError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| CertificateError::Invalid(e.to_string()))?;
        Self::from_der(&der)
    }

    /// PEM or DER, guessed from the content.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Vec<Self>, CertificateError> {
        if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            Self::from_pem(bytes)
        } else {
            Ok(vec![Self::from_der(bytes)?])
        }
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Base64 of the DER bytes on one line, as metadata carries it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }

    /// Lower-case hex SHA-256 of the DER bytes, for logs and admin screens.
    pub fn sha256_fingerprint(&self) -> String {
        hex::encode(Sha256::digest(&self.der))
    }

    pub(crate) fn to_samael(&self) -> samael::crypto::CertificateDer {
        samael::crypto::CertificateDer::from(self.der.clone())
    }
}

fn check_key(cert: &X509) -> Result<(), CertificateError> {
    let key = cert.public_key().map_err(|e| CertificateError::Invalid(e.to_string()))?;
    if key.rsa().is_ok() || key.ec_key().is_ok() {
        Ok(())
    } else {
        Err(CertificateError::UnsupportedKey)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("idp-fixtures").join(name);
        std::fs::read(path).unwrap()
    }

    #[test]
    fn pem_der_and_base64_forms_agree() {
        let from_pem = IdpCertificate::from_pem(&fixture("idp-a.crt.pem")).unwrap();
        assert_eq!(from_pem.len(), 1);
        let from_der = IdpCertificate::from_der(&fixture("idp-a.crt.der")).unwrap();
        assert_eq!(from_pem[0], from_der);
        let from_b64 = IdpCertificate::from_base64(&from_der.to_base64()).unwrap();
        assert_eq!(from_b64, from_der);
        let guessed = IdpCertificate::from_pem_or_der(&fixture("idp-a.crt.der")).unwrap();
        assert_eq!(guessed[0], from_der);
        assert_eq!(from_der.sha256_fingerprint().len(), 64);
    }

    #[test]
    fn pem_bundle_yields_every_certificate() {
        let mut bundle = fixture("idp-a.crt.pem");
        bundle.extend(fixture("idp-b.crt.pem"));
        let certs = IdpCertificate::from_pem_or_der(&bundle).unwrap();
        assert_eq!(certs.len(), 2);
        assert_ne!(certs[0], certs[1]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(IdpCertificate::from_der(b"not a cert").is_err());
        assert!(IdpCertificate::from_base64("!!!").is_err());
        assert!(IdpCertificate::from_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(IdpCertificate::from_pem(b"").is_err());
    }
}
