//! Per-account SAML SSO configuration: which IdP is trusted (entity ID, SSO URL, signing
//! certificates), who we are to it (SP entity ID, ACS URL) and the login policy (clock
//! skew, IdP-initiated login, JIT provisioning, SHA-1, redirect targets).
//!
//! A configuration without a signing certificate is refused: samael skips signature
//! verification when it has no key, so such a configuration would accept forged logins.
//! Certificates roll over by holding several at once (`add_certificate`, then
//! `remove_certificate` of the old one); removing the last one is refused.

use chrono::{NaiveDateTime, TimeZone, Utc};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::cache::TtlCache;

use crate::error::{AppError, AppResult};
use crate::provisioning::audit;
use crate::provisioning::{Actor, Env, Source};
use crate::saml::{IdpCertificate, IdpMetadata, SpValidationConfig};
use crate::store::saml::{SsoCertificateRow, SsoConfigRow};
use crate::store::{self, DbConn};

/// Default tolerated clock difference between IdP and SP.
pub const DEFAULT_CLOCK_SKEW_SECONDS: i32 = 180;
/// Upper bound on the configurable clock skew.
pub const MAX_CLOCK_SKEW_SECONDS: i32 = 600;
/// How many signing certificates an account may trust at once.
pub const MAX_CERTIFICATES: usize = 8;

/// `PUT /api/v1/sso`: either `idp_metadata` (XML; entity ID, SSO URL and signing
/// certificates are read from it) or `idp_entity_id` + `idp_certificates` (PEM) by hand.
/// Fields given by hand override what the metadata says.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoInput {
    pub idp_metadata: Option<String>,
    pub idp_entity_id: Option<String>,
    pub sso_url: Option<String>,
    /// PEM certificates (each may hold several); replaces the trusted set.
    pub idp_certificates: Option<Vec<String>>,
    /// Our entity ID; `"default"` goes back to `<public-url>/saml/<account-id>/metadata`.
    pub sp_entity_id: Option<String>,
    pub clock_skew_seconds: Option<i32>,
    pub allow_idp_initiated: Option<bool>,
    pub jit_enabled: Option<bool>,
    pub allow_sha1: Option<bool>,
    /// Absolute URL prefixes (scheme + host [+ path]) a login may redirect to, besides
    /// local paths.
    pub allowed_redirects: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub id: String,
    pub fingerprint_sha256: String,
    #[serde(serialize_with = "crate::clock::rfc3339::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<NaiveDateTime>,
    pub pem: String,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: NaiveDateTime,
}

/// The configuration as the API shows it, with the SP side an IdP admin needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SsoView {
    pub account_id: String,
    pub idp_entity_id: String,
    pub sso_url: Option<String>,
    pub certificates: Vec<CertificateView>,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
    pub login_url: String,
    pub clock_skew_seconds: i32,
    pub allow_idp_initiated: bool,
    pub jit_enabled: bool,
    pub allow_sha1: bool,
    pub allowed_redirects: Vec<String>,
    #[serde(serialize_with = "crate::clock::rfc3339::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: NaiveDateTime,
}

/// Our SAML URLs for an account, all derived from the configured public URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpUrls {
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
    pub login_url: String,
}

impl SpUrls {
    /// `path_key` is the account segment of the URL (its id, or the vanity name the
    /// request used); `sp_entity_id` the configured override.
    pub fn new(public_url: &str, path_key: &str, account_id: &str, sp_entity_id: Option<&str>) -> SpUrls {
        let base = public_url.trim_end_matches('/');
        SpUrls {
            entity_id: sp_entity_id.map(str::to_owned).unwrap_or_else(|| format!("{base}/saml/{account_id}/metadata")),
            acs_url: format!("{base}/saml/{path_key}/acs"),
            metadata_url: format!("{base}/saml/{path_key}/metadata"),
            login_url: format!("{base}/saml/{path_key}/login"),
        }
    }
}

/// A loaded configuration: the stored row and its parsed certificates.
#[derive(Debug, Clone)]
pub struct LoadedSso {
    pub row: SsoConfigRow,
    pub certificates: Vec<IdpCertificate>,
    pub allowed_redirects: Vec<String>,
}

impl LoadedSso {
    /// The validator's settings for a response posted to `urls.acs_url`.
    pub fn validation_config(&self, urls: &SpUrls) -> SpValidationConfig {
        let mut cfg = SpValidationConfig::new(
            self.row.idp_entity_id.clone(),
            self.certificates.clone(),
            urls.entity_id.clone(),
            urls.acs_url.clone(),
        );
        cfg.clock_skew = chrono::Duration::seconds(i64::from(self.row.clock_skew_seconds));
        cfg.allow_idp_initiated = self.row.allow_idp_initiated;
        cfg.allow_sha1 = self.row.allow_sha1;
        cfg
    }
}

/// The account's configuration, if any.
pub fn load(conn: &mut DbConn, account: &str) -> AppResult<Option<LoadedSso>> {
    let Some(row) = store::saml::config(conn, account)? else { return Ok(None) };
    let mut certificates = Vec::new();
    for c in store::saml::certificates(conn, account)? {
        // Stored certificates were validated on the way in; one that no longer parses
        // (a newer openssl refusing it) is skipped rather than failing every login.
        match IdpCertificate::from_pem(c.pem.as_bytes()) {
            Ok(mut certs) => certificates.append(&mut certs),
            Err(e) => tracing::warn!(account, certificate = %c.id, error = %e, "stored IdP certificate unusable"),
        }
    }
    let allowed_redirects = serde_json::from_str(&row.allowed_redirects).unwrap_or_default();
    Ok(Some(LoadedSso { row, certificates, allowed_redirects }))
}

pub fn get(conn: &mut DbConn, public_url: &str, account: &str) -> AppResult<SsoView> {
    let row = store::saml::config(conn, account)?.ok_or(AppError::not_found("SSO configuration"))?;
    let certs = store::saml::certificates(conn, account)?;
    Ok(view(public_url, row, certs))
}

fn view(public_url: &str, row: SsoConfigRow, certs: Vec<SsoCertificateRow>) -> SsoView {
    let urls = SpUrls::new(public_url, &row.account_id, &row.account_id, row.sp_entity_id.as_deref());
    SsoView {
        account_id: row.account_id.clone(),
        idp_entity_id: row.idp_entity_id,
        sso_url: row.sso_url,
        certificates: certs.into_iter().map(CertificateView::from).collect(),
        sp_entity_id: urls.entity_id,
        acs_url: urls.acs_url,
        metadata_url: urls.metadata_url,
        login_url: urls.login_url,
        clock_skew_seconds: row.clock_skew_seconds,
        allow_idp_initiated: row.allow_idp_initiated,
        jit_enabled: row.jit_enabled,
        allow_sha1: row.allow_sha1,
        allowed_redirects: serde_json::from_str(&row.allowed_redirects).unwrap_or_default(),
        updated_at: row.updated_at,
    }
}

/// Everything checked before anything is written.
struct Resolved {
    idp_entity_id: String,
    sso_url: Option<String>,
    certificates: Option<Vec<IdpCertificate>>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::bad_request("invalid_sso_config", message)
}

fn resolve(input: &SsoInput, current: Option<&SsoConfigRow>) -> AppResult<Resolved> {
    let metadata = match &input.idp_metadata {
        Some(xml) => Some(IdpMetadata::parse(xml).map_err(|e| bad(format!("IdP metadata: {e}")))?),
        None => None,
    };
    let idp_entity_id = input
        .idp_entity_id
        .clone()
        .or_else(|| metadata.as_ref().map(|m| m.entity_id.clone()))
        .or_else(|| current.map(|c| c.idp_entity_id.clone()))
        .ok_or_else(|| bad("give idp_metadata, or idp_entity_id and idp_certificates"))?;
    if idp_entity_id.trim().is_empty() || idp_entity_id.len() > 1024 {
        return Err(bad("idp_entity_id must be 1–1024 characters"));
    }
    let sso_url = match (&input.sso_url, &metadata) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(m)) => m.sso_url().map(str::to_owned),
        (None, None) => current.and_then(|c| c.sso_url.clone()),
    };
    if let Some(u) = &sso_url {
        check_absolute_url(u, "sso_url")?;
    }
    let certificates = match (&input.idp_certificates, &metadata) {
        (Some(pems), _) => {
            let mut all = Vec::new();
            for pem in pems {
                let mut certs = IdpCertificate::from_pem(pem.as_bytes())
                    .map_err(|e| bad(format!("idp_certificates: {e} (PEM expected)")))?;
                all.append(&mut certs);
            }
            Some(all)
        }
        (None, Some(m)) => Some(m.signing_certificates.clone()),
        (None, None) => None,
    };
    if let Some(certs) = &certificates {
        if certs.is_empty() {
            return Err(bad("at least one IdP signing certificate is required"));
        }
        if certs.len() > MAX_CERTIFICATES {
            return Err(bad(format!("at most {MAX_CERTIFICATES} signing certificates")));
        }
    }
    Ok(Resolved { idp_entity_id, sso_url, certificates })
}

fn check_absolute_url(u: &str, field: &str) -> AppResult<url::Url> {
    let parsed = url::Url::parse(u).map_err(|_| bad(format!("{field} must be an absolute http(s) URL")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() || u.len() > 2048 {
        return Err(bad(format!("{field} must be an absolute http(s) URL")));
    }
    Ok(parsed)
}

/// Creates or replaces the account's configuration. Unset fields keep their current
/// value (or the default on first configuration).
pub fn set(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    input: &SsoInput,
) -> AppResult<SsoView> {
    store::accounts::find(conn, account)?.ok_or(AppError::not_found("account"))?;
    let current = store::saml::config(conn, account)?;
    let resolved = resolve(input, current.as_ref())?;
    if current.is_none() && resolved.certificates.is_none() {
        return Err(bad("at least one IdP signing certificate is required (idp_metadata or idp_certificates)"));
    }
    // `default` (not a URI, so never a real entity ID) goes back to the derived default.
    let reset_sp_entity_id = input.sp_entity_id.as_deref().is_some_and(|id| id.trim() == "default");
    if let Some(id) = input.sp_entity_id.as_ref().filter(|_| !reset_sp_entity_id) {
        if id.trim().is_empty() || id.len() > 1024 || id.chars().any(char::is_whitespace) {
            return Err(bad("sp_entity_id must be a URI without spaces, at most 1024 characters"));
        }
    }
    let clock_skew_seconds = input
        .clock_skew_seconds
        .or(current.as_ref().map(|c| c.clock_skew_seconds))
        .unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
    if !(0..=MAX_CLOCK_SKEW_SECONDS).contains(&clock_skew_seconds) {
        return Err(bad(format!("clock_skew_seconds must be 0–{MAX_CLOCK_SKEW_SECONDS}")));
    }
    let allowed_redirects = match &input.allowed_redirects {
        Some(list) => {
            for u in list {
                check_absolute_url(u, "allowed_redirects")?;
            }
            list.clone()
        }
        None => current.as_ref().and_then(|c| serde_json::from_str(&c.allowed_redirects).ok()).unwrap_or_default(),
    };
    let row = SsoConfigRow {
        account_id: account.to_owned(),
        idp_entity_id: resolved.idp_entity_id,
        sso_url: resolved.sso_url,
        sp_entity_id: if reset_sp_entity_id {
            None
        } else {
            input.sp_entity_id.clone().or_else(|| current.as_ref().and_then(|c| c.sp_entity_id.clone()))
        },
        clock_skew_seconds,
        allow_idp_initiated: input
            .allow_idp_initiated
            .or(current.as_ref().map(|c| c.allow_idp_initiated))
            .unwrap_or(false),
        jit_enabled: input.jit_enabled.or(current.as_ref().map(|c| c.jit_enabled)).unwrap_or(true),
        allow_sha1: input.allow_sha1.or(current.as_ref().map(|c| c.allow_sha1)).unwrap_or(false),
        allowed_redirects: serde_json::to_string(&allowed_redirects).map_err(|e| AppError::Internal(e.to_string()))?,
        updated_at: env.now,
        granted_from: actor.from_account.clone(),
    };
    store::saml::save_config(conn, &row)?;
    if let Some(certs) = &resolved.certificates {
        store::saml::delete_certificates(conn, account)?;
        let mut seen = std::collections::BTreeSet::new();
        for cert in certs {
            if seen.insert(cert.sha256_fingerprint()) {
                store::saml::insert_certificate(conn, &certificate_row(account, cert, env.now)?)?;
            }
        }
    }
    let certs = store::saml::certificates(conn, account)?;
    audit::record(
        conn,
        env,
        account,
        actor,
        source,
        "sso.configured",
        None,
        serde_json::json!({
            "idp_entity_id": row.idp_entity_id,
            "certificates": certs.iter().map(|c| c.fingerprint.clone()).collect::<Vec<_>>(),
            "allow_idp_initiated": row.allow_idp_initiated,
            "jit_enabled": row.jit_enabled,
            "allow_sha1": row.allow_sha1,
            "clock_skew_seconds": row.clock_skew_seconds,
        }),
    )?;
    Ok(view(&env.public_url, row, certs))
}

fn certificate_row(account: &str, cert: &IdpCertificate, now: NaiveDateTime) -> AppResult<SsoCertificateRow> {
    let x509 = openssl::x509::X509::from_der(cert.der()).map_err(|e| bad(format!("certificate: {e}")))?;
    let pem = String::from_utf8(x509.to_pem().map_err(|e| AppError::Internal(e.to_string()))?)
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(SsoCertificateRow {
        id: crate::secrets::new_id(),
        account_id: account.to_owned(),
        fingerprint: cert.sha256_fingerprint(),
        pem,
        not_after: not_after(&x509),
        created_at: now,
    })
}

/// The certificate's notAfter, for the administrator's rollover planning (validation
/// does not check certificate dates: trust comes from configuration, not from a PKI).
fn not_after(cert: &openssl::x509::X509) -> Option<NaiveDateTime> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(cert.not_after()).ok()?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    Utc.timestamp_opt(secs, 0).single().map(|t| t.naive_utc())
}

/// Adds a signing certificate (rollover: old and new are both trusted until the old one
/// is removed).
pub fn add_certificate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    pem: &str,
) -> AppResult<CertificateView> {
    store::saml::config(conn, account)?.ok_or(AppError::not_found("SSO configuration"))?;
    let certs =
        IdpCertificate::from_pem(pem.as_bytes()).map_err(|e| bad(format!("certificate: {e} (PEM expected)")))?;
    let [cert] = certs.as_slice() else { return Err(bad("give exactly one certificate")) };
    if store::saml::certificates(conn, account)?.len() >= MAX_CERTIFICATES {
        return Err(AppError::conflict(
            "too_many_certificates",
            format!("at most {MAX_CERTIFICATES} signing certificates"),
        ));
    }
    let row = certificate_row(account, cert, env.now)?;
    store::saml::insert_certificate(conn, &row)
        .map_err(AppError::on_unique("certificate_exists", "this certificate is already trusted"))?;
    certificates_changed(conn, env, actor, source, "sso.certificate_added", &row)?;
    Ok(row.into())
}

/// After a certificate change: cached validation settings go stale (`updated_at`), and the
/// audit log says which certificate.
fn certificates_changed(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    action: &str,
    cert: &SsoCertificateRow,
) -> AppResult<()> {
    store::saml::touch_config(conn, &cert.account_id, env.now)?;
    let detail = serde_json::json!({ "fingerprint": cert.fingerprint });
    audit::record(conn, env, &cert.account_id, actor, source, action, Some(&cert.id), detail)
}

impl From<SsoCertificateRow> for CertificateView {
    fn from(c: SsoCertificateRow) -> CertificateView {
        CertificateView {
            id: c.id,
            fingerprint_sha256: c.fingerprint,
            not_after: c.not_after,
            pem: c.pem,
            created_at: c.created_at,
        }
    }
}

/// Removes a certificate by id or SHA-256 fingerprint; the last one cannot go.
pub fn remove_certificate(
    conn: &mut DbConn,
    env: &Env,
    actor: &Actor,
    source: Source,
    account: &str,
    id_or_fingerprint: &str,
) -> AppResult<()> {
    let certs = store::saml::certificates(conn, account)?;
    let key = id_or_fingerprint.to_ascii_lowercase().replace(':', "");
    let Some(found) = certs.iter().find(|c| c.id == id_or_fingerprint || c.fingerprint == key) else {
        return Err(AppError::not_found("certificate"));
    };
    if certs.len() == 1 {
        return Err(AppError::conflict(
            "last_certificate",
            "this is the only trusted signing certificate; add its successor first (or delete the SSO configuration)",
        ));
    }
    store::saml::delete_certificate(conn, account, &found.id)?;
    certificates_changed(conn, env, actor, source, "sso.certificate_removed", found)
}

pub fn delete(conn: &mut DbConn, env: &Env, actor: &Actor, source: Source, account: &str) -> AppResult<()> {
    if !store::saml::delete_config(conn, account)? {
        return Err(AppError::not_found("SSO configuration"));
    }
    audit::record(conn, env, account, actor, source, "sso.removed", None, serde_json::json!({}))?;
    Ok(())
}

/// An account with its loaded SSO configuration, as the SAML endpoints use it.
#[derive(Debug, Clone)]
pub struct AccountSso {
    pub account: crate::store::models::AccountRow,
    pub sso: LoadedSso,
}

/// How long a loaded configuration is used without looking at the database. Changes made
/// through this process apply at once (the cache is cleared); other processes see them
/// within this window.
pub const SSO_RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Loaded configurations by the URL's account key (id or vanity name): parsing the IdP
/// certificates on every login cost more than the database reads around it. `None` is a
/// cached "not configured".
pub struct SsoCache(TtlCache<String, Option<Arc<AccountSso>>>);

impl Default for SsoCache {
    fn default() -> Self {
        SsoCache(TtlCache::new(SSO_RECHECK_AFTER, 100_000))
    }
}

impl SsoCache {
    /// The fresh cached entry for `key`: `Some(None)` is a cached "not configured".
    pub fn fresh(&self, key: &str) -> Option<Option<Arc<AccountSso>>> {
        self.0.get(key)
    }

    /// Loads (or reuses, when `updated_at` has not moved) the configuration behind `key`.
    pub fn load(&self, conn: &mut DbConn, key: &str) -> AppResult<Option<Arc<AccountSso>>> {
        let Some(account) = store::accounts::find_by_id_or_vanity(conn, key)? else {
            return Err(AppError::not_found("account"));
        };
        let Some(row) = store::saml::config(conn, &account.id)? else {
            self.0.put(key.to_owned(), None);
            return Ok(None);
        };
        let previous = self.0.get_with_age(key).and_then(|(v, _)| v);
        let value = match previous {
            Some(p) if p.account.id == account.id && p.sso.row.updated_at == row.updated_at => {
                Arc::new(AccountSso { account, sso: LoadedSso { row, ..p.sso.clone() } })
            }
            _ => {
                let sso = load(conn, &account.id)?.ok_or(AppError::not_found("SSO configuration"))?;
                Arc::new(AccountSso { account, sso })
            }
        };
        self.0.put(key.to_owned(), Some(value.clone()));
        Ok(Some(value))
    }

    /// Forget everything (after a configuration change through this process).
    pub fn clear(&self) {
        self.0.clear();
    }
}
