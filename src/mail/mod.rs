//! Delivery of the durable mail outbox over SMTP. Every mail (invitations, notices) is
//! queued in `mail_outbox` in the transaction of its change; when `serve` has an SMTP URL
//! and a sender address, [`sender::MailSender`] delivers the rows in the background.
//!
//! Semantics: at least once, with one `Message-ID` per row on every attempt. A row is marked
//! sent right after the SMTP server accepted its message, so it goes out twice only when the
//! process dies between the two. Temporary failures (4xx, no connection) are retried with
//! [`backoff`]; a permanent rejection (5xx) is retried [`PERMANENT_ATTEMPTS`] times in all,
//! then the row is marked failed. The configuration here is plain data: parsed from the
//! flags by the CLI, checked at start-up.

pub mod sender;

use std::time::Duration;

use crate::error::{AppError, AppResult};

/// A permanent rejection (5xx) fails the row after this many attempts in all.
pub const PERMANENT_ATTEMPTS: i32 = 3;
/// The first retry waits this long; every further failure doubles it, up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(30);
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// How long a claimed row belongs to the process that claimed it (default).
pub const DEFAULT_LEASE_SECONDS: u64 = 300;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `smtp://`: plain TCP, upgraded with STARTTLS when the server offers it.
    StartTlsIfOffered,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// `smtp://[user[:pass]@]host[:port]` or `smtps://…`, user and password percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    pub tls: TlsMode,
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for SmtpUrl {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpUrl")
            .field("tls", &self.tls)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u.as_str()))
            .finish()
    }
}

fn bad_url(why: impl std::fmt::Display) -> AppError {
    AppError::bad_request(
        "smtp_url",
        format!(
            "PROVISOR_SMTP_URL (--smtp-url) is not a valid SMTP URL: {why}; \
             expected smtp://[user:pass@]host[:port] (STARTTLS when offered, port 587) or \
             smtps://[user:pass@]host[:port] (implicit TLS, port 465)"
        ),
    )
}

fn decode(part: &str, what: &str) -> AppResult<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad_url(format!("the {what} is not UTF-8 once percent-decoded")))
}

impl SmtpUrl {
    pub fn parse(text: &str) -> AppResult<SmtpUrl> {
        let url = url::Url::parse(text.trim()).map_err(bad_url)?;
        let (tls, default_port) = match url.scheme() {
            "smtp" => (TlsMode::StartTlsIfOffered, 587),
            "smtps" => (TlsMode::Implicit, 465),
            other => return Err(bad_url(format!("the scheme is {other:?}, not smtp or smtps"))),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(bad_url("it names no host")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad_url("it has a path, a query or a fragment"));
        }
        let port = url.port().unwrap_or(default_port);
        if port == 0 {
            return Err(bad_url("port 0"));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = decode(url.username(), "user")?;
            let pass = decode(url.password().unwrap_or(""), "password")?;
            Some((user, pass))
        };
        Ok(SmtpUrl { tls, host, port, credentials })
    }
}

/// Everything the sender needs, checked at start-up.
#[derive(Debug, Clone)]
pub struct MailConfig {
    pub smtp: SmtpUrl,
    /// The `From` mailbox (`noreply@example.com` or `Provisor <noreply@example.com>`).
    pub from: lettre::message::Mailbox,
    /// The right-hand side of every Message-ID: the public URL's host.
    pub message_id_host: String,
    /// How long a claimed row belongs to this process.
    pub lease: Duration,
    /// The pause between two looks at an empty outbox.
    pub poll: Duration,
    /// Rows claimed at once.
    pub batch: i64,
}

impl MailConfig {
    /// `None` when neither the SMTP URL nor the sender is set (mail stays in the outbox);
    /// an error when only one of them is, or either is invalid.
    pub fn from_settings(
        smtp_url: Option<&str>,
        mail_from: Option<&str>,
        public_url: &str,
        lease: Duration,
    ) -> AppResult<Option<MailConfig>> {
        let smtp_url = smtp_url.map(str::trim).filter(|s| !s.is_empty());
        let mail_from = mail_from.map(str::trim).filter(|s| !s.is_empty());
        let (url, from) = match (smtp_url, mail_from) {
            (None, None) => return Ok(None),
            (Some(u), Some(f)) => (u, f),
            (Some(_), None) => {
                return Err(AppError::bad_request(
                    "mail_config",
                    "PROVISOR_SMTP_URL (--smtp-url) is set but PROVISOR_MAIL_FROM (--mail-from) is not: \
                     set the sender address too to deliver mail, or unset both to keep mail in the outbox",
                ))
            }
            (None, Some(_)) => {
                return Err(AppError::bad_request(
                    "mail_config",
                    "PROVISOR_MAIL_FROM (--mail-from) is set but PROVISOR_SMTP_URL (--smtp-url) is not: \
                     set the SMTP server too (smtp://user:pass@host:port or smtps://…) to deliver mail, \
                     or unset both to keep mail in the outbox",
                ))
            }
        };
        let smtp = SmtpUrl::parse(url)?;
        let from: lettre::message::Mailbox = from.parse().map_err(|e| {
            AppError::bad_request(
                "mail_from",
                format!("PROVISOR_MAIL_FROM (--mail-from) is not a mail address: {e} (example: noreply@example.com)"),
            )
        })?;
        Ok(Some(MailConfig {
            smtp,
            from,
            message_id_host: message_id_host(public_url),
            lease: lease.max(Duration::from_secs(1)),
            poll: Duration::from_millis(500),
            batch: 20,
        }))
    }

    /// The time one SMTP command may take: short enough that a send ends well within the
    /// lease (the sender stops sending from a claim when less than two of these are left).
    pub fn command_timeout(&self) -> Duration {
        (self.lease / 6).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }
}

/// The host of the public URL (`localhost` if it has none).
pub fn message_id_host(public_url: &str) -> String {
    url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The Message-ID of an outbox row: its id and creation instant (unique in the database,
/// and across databases of one host in practice) at the public host.
pub fn message_id(id: i64, created_at: chrono::NaiveDateTime, host: &str) -> String {
    format!("<outbox.{id}.{}@{host}>", created_at.and_utc().timestamp_micros())
}

/// The wait before the next attempt after `failures` failed attempts (1 → 30 s, 2 → 60 s,
/// … at most an hour).
pub fn backoff(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1)).unwrap_or(0).min(16);
    BACKOFF_FIRST.saturating_mul(1u32 << doublings).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_with_their_defaults() {
        let u = SmtpUrl::parse("smtp://mail.example.com").unwrap();
        assert_eq!(
            u,
            SmtpUrl { tls: TlsMode::StartTlsIfOffered, host: "mail.example.com".into(), port: 587, credentials: None }
        );
        let u = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((u.tls, u.port), (TlsMode::Implicit, 465));
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 2525));
        let u = SmtpUrl::parse("smtp://[::1]:25").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 25));
    }

    #[test]
    fn credentials_are_percent_decoded() {
        let u = SmtpUrl::parse("smtps://apikey%40example.com:p%3Ass%2Fw%20rd@smtp.example.com:2465").unwrap();
        assert_eq!(u.credentials, Some(("apikey@example.com".into(), "p:ss/w rd".into())));
        assert_eq!(u.port, 2465);
        let u = SmtpUrl::parse("smtp://user@h").unwrap();
        assert_eq!(u.credentials, Some(("user".into(), String::new())));
        assert!(!format!("{u:?}").contains("rd"), "Debug shows no password");
        let u = SmtpUrl::parse("smtp://user:secret@h").unwrap();
        assert!(!format!("{u:?}").contains("secret"));
    }

    #[test]
    fn bad_smtp_urls_are_refused_with_a_reason() {
        for bad in [
            "mail.example.com",
            "http://mail.example.com",
            "smtp://",
            "smtp://host:notaport",
            "smtp://host:0",
            "smtp://host/path",
            "smtp://host?tls=1",
            "smtp://u:%ff@host",
        ] {
            let e = SmtpUrl::parse(bad).unwrap_err();
            assert!(e.to_string().contains("PROVISOR_SMTP_URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn both_settings_or_neither() {
        let lease = Duration::from_secs(300);
        assert!(MailConfig::from_settings(None, None, "http://x", lease).unwrap().is_none());
        assert!(MailConfig::from_settings(Some(""), Some(" "), "http://x", lease).unwrap().is_none());
        let e = MailConfig::from_settings(Some("smtp://h"), None, "http://x", lease).unwrap_err().to_string();
        assert!(e.contains("PROVISOR_MAIL_FROM"), "{e}");
        let e = MailConfig::from_settings(None, Some("a@b.example"), "http://x", lease).unwrap_err().to_string();
        assert!(e.contains("PROVISOR_SMTP_URL"), "{e}");
        let e = MailConfig::from_settings(Some("smtp://h"), Some("not an address"), "http://x", lease)
            .unwrap_err()
            .to_string();
        assert!(e.contains("PROVISOR_MAIL_FROM"), "{e}");
        let c = MailConfig::from_settings(
            Some("smtp://h:25"),
            Some("Provisor <noreply@example.com>"),
            "https://id.example.com:8443/base",
            lease,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.from.email.to_string(), "noreply@example.com");
        assert_eq!(c.message_id_host, "id.example.com");
        assert_eq!(c.command_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn backoff_doubles_from_thirty_seconds_to_an_hour() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(0).as_secs(), 30);
        assert_eq!(backoff(i32::MAX).as_secs(), 3600);
    }

    #[test]
    fn message_ids_are_stable_per_row() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap().and_hms_micro_opt(10, 0, 0, 42).unwrap();
        let a = message_id(7, t, "id.example.com");
        assert_eq!(a, message_id(7, t, "id.example.com"));
        assert_ne!(a, message_id(8, t, "id.example.com"));
        assert!(a.starts_with("<outbox.7.") && a.ends_with("@id.example.com>"), "{a}");
        assert_eq!(message_id_host("not a url"), "localhost");
    }
}
