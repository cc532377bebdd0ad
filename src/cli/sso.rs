//! `provisor sso …`: the SAML configuration.

use clap::Subcommand;
use serde_json::{json, Value};

use super::flag;
use super::{cli_env, open, SystemClock};
use crate::error::{AppError, AppResult};
use crate::provisioning::{Actor, Source};
use crate::service;

#[derive(Debug, Subcommand)]
pub enum SsoCmd {
    /// Create or change the account's SAML configuration. The IdP comes from its metadata
    /// (`--idp-metadata`) or from `--idp-entity-id` + `--idp-certificate`; options not
    /// given keep their current value.
    Set {
        #[arg(long)]
        account: String,
        /// IdP metadata XML (entity ID, SSO URL and signing certificates are read from it).
        #[arg(long)]
        idp_metadata: Option<std::path::PathBuf>,
        #[arg(long)]
        idp_entity_id: Option<String>,
        /// IdP SSO URL (HTTP-Redirect binding) for SP-initiated login.
        #[arg(long)]
        sso_url: Option<String>,
        /// The IdP's signing certificate: a PEM or DER file, or the PEM text itself; repeat
        /// for rollover. Replaces the trusted set.
        #[arg(long, allow_hyphen_values = true)]
        idp_certificate: Vec<String>,
        /// Our entity ID (default: the public URL + /saml/ACCOUNT_ID/metadata; `default`
        /// goes back to it).
        #[arg(long)]
        sp_entity_id: Option<String>,
        /// Accept unsolicited (IdP-initiated) responses.
        #[arg(long, conflicts_with = "no_idp_initiated")]
        allow_idp_initiated: bool,
        #[arg(long)]
        no_idp_initiated: bool,
        /// Tolerated clock difference, 0–600 (default 180).
        #[arg(long)]
        clock_skew_seconds: Option<i32>,
        /// Turn just-in-time provisioning off (only existing users may sign in).
        #[arg(long, conflicts_with = "jit")]
        no_jit: bool,
        #[arg(long)]
        jit: bool,
        /// Accept RSA-SHA1 signatures and SHA-1 digests (legacy IdPs only).
        #[arg(long)]
        allow_sha1: bool,
        /// An absolute URL prefix a login may redirect to (repeatable; replaces the list).
        #[arg(long)]
        allowed_redirect: Vec<String>,
    },
    /// Print the configuration, with the SP entity ID, ACS URL and metadata URL.
    Show {
        #[arg(long)]
        account: String,
    },
    /// Remove the configuration.
    Delete {
        #[arg(long)]
        account: String,
    },
    /// Trust one more signing certificate (rollover).
    AddCertificate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Stop trusting a certificate (by id or SHA-256 fingerprint).
    RemoveCertificate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        certificate: String,
    },
}

/// Runs one `provisor sso` verb.
pub(super) fn run(database_url: &str, cmd: SsoCmd) -> AppResult<Option<Value>> {
    let clock = SystemClock;
    let actor = Actor::cli();
    let db = open(database_url, true)?;
    let env = cli_env(&clock);
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map_err(|e| AppError::bad_request("cannot_read_file", format!("cannot read {}: {e}", path.display())))
    };
    match cmd {
        SsoCmd::Set {
            account,
            idp_metadata,
            idp_entity_id,
            sso_url,
            idp_certificate,
            sp_entity_id,
            allow_idp_initiated,
            no_idp_initiated,
            clock_skew_seconds,
            no_jit,
            jit,
            allow_sha1,
            allowed_redirect,
        } => {
            let certificates = if idp_certificate.is_empty() {
                None
            } else {
                Some(idp_certificate.iter().map(|c| certificate_pem(c)).collect::<AppResult<Vec<_>>>()?)
            };
            let input = service::sso::SsoInput {
                idp_metadata: idp_metadata.as_deref().map(read).transpose()?,
                idp_entity_id,
                sso_url,
                idp_certificates: certificates,
                sp_entity_id,
                clock_skew_seconds,
                allow_idp_initiated: flag(allow_idp_initiated, no_idp_initiated),
                jit_enabled: flag(jit, no_jit),
                allow_sha1: allow_sha1.then_some(true),
                allowed_redirects: (!allowed_redirect.is_empty()).then_some(allowed_redirect),
            };
            let v = db.write_blocking(|c| service::sso::set(c, &env, &actor, Source::Cli, &account, &input))?;
            Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        SsoCmd::Show { account } => {
            let v = db.read_blocking(|c| service::sso::get(c, &env.public_url, &account))?;
            Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        SsoCmd::Delete { account } => {
            db.write_blocking(|c| service::sso::delete(c, &env, &actor, Source::Cli, &account))?;
            Ok(Some(json!({ "account_id": account, "deleted": true })))
        }
        SsoCmd::AddCertificate { account, file } => {
            let pem = certificate_pem(&file.to_string_lossy())?;
            let v =
                db.write_blocking(|c| service::sso::add_certificate(c, &env, &actor, Source::Cli, &account, &pem))?;
            Ok(Some(serde_json::to_value(v).map_err(|e| AppError::Internal(e.to_string()))?))
        }
        SsoCmd::RemoveCertificate { account, certificate } => {
            db.write_blocking(|c| {
                service::sso::remove_certificate(c, &env, &actor, Source::Cli, &account, &certificate)
            })?;
            Ok(Some(json!({ "account_id": account, "removed": certificate })))
        }
    }
}

/// A certificate argument as PEM text: the PEM itself, or a file holding PEM or DER.
fn certificate_pem(arg: &str) -> AppResult<String> {
    let bad = |m: String| AppError::bad_request("invalid_certificate", m);
    if arg.trim_start().starts_with("-----BEGIN") {
        return Ok(arg.to_owned());
    }
    let path = std::path::Path::new(arg);
    let bytes = std::fs::read(path).map_err(|e| {
        AppError::bad_request(
            "cannot_read_file",
            format!(
                "cannot read the certificate file {}: {e} (give a PEM or DER file, or the PEM text)",
                path.display()
            ),
        )
    })?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        if text.contains("-----BEGIN") {
            return Ok(text.to_owned());
        }
    }
    let cert = openssl::x509::X509::from_der(&bytes)
        .map_err(|_| bad(format!("{} is neither a PEM nor a DER certificate", path.display())))?;
    let pem = cert.to_pem().map_err(|e| bad(format!("cannot convert {} to PEM: {e}", path.display())))?;
    String::from_utf8(pem).map_err(|e| AppError::Internal(e.to_string()))
}
