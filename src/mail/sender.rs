//! The background sender: one thread per process that claims due outbox rows
//! (`store::mail::claim`, through the normal write path), sends each with lettre's SMTP
//! transport and records the outcome right after the server's answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};

use super::{backoff, MailConfig, TlsMode, PERMANENT_ATTEMPTS};
use crate::clock::SharedClock;
use crate::error::{AppError, AppResult};
use crate::store::mail::{self as outbox, AfterFailure};
use crate::store::models::MailRow;
use crate::store::Db;

/// The running sender; stops (and is joined) when dropped.
pub struct MailSender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MailSender {
    /// Builds the SMTP transport (an error is a start-up error) and starts the thread.
    pub fn start(db: Db, clock: SharedClock, config: MailConfig) -> AppResult<MailSender> {
        let transport = transport(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let beat = db.health.register("mail_sender");
        let thread = std::thread::Builder::new()
            .name("mail-sender".into())
            .spawn(move || {
                Loop { db, clock, config, transport, stop: flag, token: crate::secrets::new_id(), beat }.run()
            })
            .map_err(|e| AppError::Internal(format!("cannot start the mail sender: {e}")))?;
        Ok(MailSender { stop, thread: Some(thread) })
    }
}

impl Drop for MailSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn transport(config: &MailConfig) -> AppResult<SmtpTransport> {
    let smtp = &config.smtp;
    let params = TlsParameters::new(smtp.host.clone())
        .map_err(|e| AppError::bad_request("smtp_url", format!("cannot set up TLS for {}: {e}", smtp.host)))?;
    let tls = match smtp.tls {
        TlsMode::StartTlsIfOffered => Tls::Opportunistic(params),
        TlsMode::Implicit => Tls::Wrapper(params),
    };
    let mut builder = SmtpTransport::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(config.command_timeout()));
    if let Some((user, pass)) = &smtp.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), pass.clone()));
    }
    Ok(builder.build())
}

/// What one attempt came to.
enum Outcome {
    Sent,
    /// The row failed (recorded); `connection` when the server could not be reached at all,
    /// so the rest of the claim waits too.
    Failed {
        connection: bool,
    },
}

struct Loop {
    db: Db,
    clock: SharedClock,
    config: MailConfig,
    transport: SmtpTransport,
    stop: Arc<AtomicBool>,
    /// This process's claims.
    token: String,
    /// Busy while claiming and sending, idle while it pauses.
    beat: crate::health::Beat,
}

/// At most this long an unreachable server pauses the sender (rows keep their own backoff).
const MAX_PAUSE: Duration = Duration::from_secs(300);
/// Longest recorded error text.
const ERROR_CHARS: usize = 500;

impl Loop {
    fn run(self) {
        tracing::info!(
            host = %self.config.smtp.host,
            port = self.config.smtp.port,
            from = %self.config.from,
            "mail delivery started"
        );
        let mut unreachable = 0i32;
        while !self.stopped() {
            self.beat.busy();
            let rows = match self.claim() {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim outbox mail");
                    self.pause(self.config.poll);
                    continue;
                }
            };
            let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= self.config.batch;
            let connection_failed = self.deliver(rows);
            if connection_failed {
                unreachable = unreachable.saturating_add(1);
                self.pause(backoff(unreachable).min(MAX_PAUSE));
            } else {
                unreachable = 0;
                if !full {
                    self.pause(self.config.poll);
                }
            }
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sleeps `d`, waking early when asked to stop.
    fn pause(&self, d: Duration) {
        self.beat.idle();
        let until = std::time::Instant::now() + d;
        while !self.stopped() {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn claim(&self) -> AppResult<Vec<MailRow>> {
        let now = self.clock.now_naive();
        let lease = chrono::Duration::from_std(self.config.lease).unwrap_or_else(|_| chrono::Duration::minutes(5));
        let (token, batch, host) = (&self.token, self.config.batch, &self.config.message_id_host);
        let id_of = |row: &MailRow| super::message_id(row.id, row.created_at, host);
        self.db.write_blocking(|c| outbox::claim(c, now, now + lease, token, batch, &id_of).map_err(AppError::from))
    }

    /// Sends the claimed rows in order; true when the server could not be reached.
    fn deliver(&self, rows: Vec<MailRow>) -> bool {
        let margin = chrono::Duration::from_std(self.config.command_timeout() * 2).unwrap_or(chrono::Duration::zero());
        let mut rows = rows.into_iter();
        while let Some(row) = rows.next() {
            let lease_short = row.claimed_until.is_none_or(|until| self.clock.now_naive() + margin > until);
            if self.stopped() || lease_short {
                // Give this row and the rest back for the next claim (here or elsewhere).
                let ids: Vec<i64> = std::iter::once(row.id).chain(rows.map(|r| r.id)).collect();
                self.release(&ids);
                return false;
            }
            if let Outcome::Failed { connection: true } = self.attempt(&row) {
                let ids: Vec<i64> = rows.map(|r| r.id).collect();
                self.release(&ids);
                return true;
            }
        }
        false
    }

    fn release(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let token = &self.token;
        if let Err(e) = self.db.write_blocking(|c| outbox::release(c, ids, token).map_err(AppError::from)) {
            // The lease runs out by itself.
            tracing::warn!(error = %e, "cannot release claimed mail");
        }
    }

    fn attempt(&self, row: &MailRow) -> Outcome {
        let message = match self.message(row) {
            Ok(m) => m,
            Err(why) => {
                // Nothing to retry: the stored mail cannot become a message.
                self.failed(row, &why, AfterFailure::GiveUp);
                return Outcome::Failed { connection: false };
            }
        };
        match self.transport.send(&message) {
            Ok(_) => {
                // The crash window of at-least-once: accepted by the server, not yet marked.
                crate::fault::point("mail:after_accept");
                self.sent(row);
                Outcome::Sent
            }
            Err(e) => {
                let attempts = row.attempts.saturating_add(1);
                let text = error_text(&e);
                let retry = AfterFailure::RetryAt(self.clock.now_naive() + chrono_of(backoff(attempts)));
                if e.is_permanent() {
                    let then = if attempts >= PERMANENT_ATTEMPTS { AfterFailure::GiveUp } else { retry };
                    tracing::warn!(mail = row.id, attempts, error = %text, "mail rejected");
                    self.failed(row, &text, then);
                    Outcome::Failed { connection: false }
                } else {
                    let connection = !e.is_transient();
                    tracing::warn!(mail = row.id, attempts, error = %text, "mail not delivered; will retry");
                    self.failed(row, &text, retry);
                    Outcome::Failed { connection }
                }
            }
        }
    }

    fn message(&self, row: &MailRow) -> Result<Message, String> {
        let to: lettre::message::Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("the recipient {:?} is not a mail address: {e}", row.recipient))?;
        let id = row
            .message_id
            .clone()
            .unwrap_or_else(|| super::message_id(row.id, row.created_at, &self.config.message_id_host));
        let created = std::time::UNIX_EPOCH
            + Duration::from_micros(u64::try_from(row.created_at.and_utc().timestamp_micros()).unwrap_or(0));
        Message::builder()
            .from(self.config.from.clone())
            .to(to)
            .subject(row.subject.as_str())
            .message_id(Some(id))
            .date(created)
            .header(ContentType::TEXT_PLAIN)
            .body(row.body.clone())
            .map_err(|e| format!("cannot build the message: {e}"))
    }

    fn sent(&self, row: &MailRow) {
        // Retried: a row left unmarked is sent again after its lease (a duplicate).
        for attempt in 0..5u64 {
            let now = self.clock.now_naive();
            match self.db.write_blocking(|c| outbox::mark_sent(c, row.id, now).map_err(AppError::from)) {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(mail = row.id, error = %e, "cannot mark mail sent");
                    std::thread::sleep(Duration::from_millis(200 * (attempt + 1)));
                }
            }
        }
    }

    fn failed(&self, row: &MailRow, error: &str, then: AfterFailure) {
        let now = self.clock.now_naive();
        let token = &self.token;
        if let Err(e) = self
            .db
            .write_blocking(|c| outbox::record_failure(c, row.id, token, now, error, then).map_err(AppError::from))
        {
            tracing::warn!(mail = row.id, error = %e, "cannot record the failed attempt");
        }
    }
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::hours(1))
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    // lettre's text names the kind, the code and the server's words.
    e.to_string().chars().take(ERROR_CHARS).collect()
}
