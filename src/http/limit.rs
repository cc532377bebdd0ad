//! Rate limits for the unauthenticated endpoints (SAML login and ACS, invitation
//! acceptance): they write rows for anyone who asks, so each (endpoint, account, client
//! address) gets a token bucket, and each client address a larger one across accounts (so
//! rotating account names does not escape it). Over the limit: 429 `rate_limited` with
//! `Retry-After`.
//!
//! The client address is the TCP peer, unless the peer is a configured trusted proxy
//! (`--trusted-proxy CIDR`): then it is the right-most address of `X-Forwarded-For` that is
//! not itself a trusted proxy — the left-most entries are whatever the client wrote.
//!
//! Every request body must keep arriving: a pause longer than `--body-timeout-seconds`
//! between two chunks ends the request with 408 `body_timeout` (SCIM: a SCIM error) and
//! closes the connection, so a client that stops sending does not hold a worker.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::error::AppError;

/// How much more a client may send across all accounts than to one account.
const PER_CLIENT_FACTOR: u32 = 5;

pub struct PublicLimiter {
    per_account: Option<DefaultKeyedRateLimiter<(&'static str, String, IpAddr)>>,
    per_client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    trusted: Vec<IpNet>,
}

impl PublicLimiter {
    /// `per_second` requests a second per (endpoint, account, client), bursts of `burst`;
    /// `per_second == 0` turns limiting off.
    pub fn new(per_second: u32, burst: u32, trusted: Vec<IpNet>) -> PublicLimiter {
        let quota = |rate: u32, burst: u32| {
            NonZeroU32::new(rate)
                .map(|r| Quota::per_second(r).allow_burst(NonZeroU32::new(burst.max(rate)).unwrap_or(r)))
        };
        PublicLimiter {
            per_account: quota(per_second, burst).map(RateLimiter::keyed),
            per_client: quota(per_second.saturating_mul(PER_CLIENT_FACTOR), burst.saturating_mul(PER_CLIENT_FACTOR))
                .map(RateLimiter::keyed),
            trusted,
        }
    }

    /// The client's address (see the module documentation).
    pub fn client_addr(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let hops: Vec<IpAddr> =
            forwarded.map(|v| v.split(',').filter_map(|h| h.trim().parse().ok()).collect()).unwrap_or_default();
        Some(hops.into_iter().rev().find(|ip| !self.is_trusted(*ip)).unwrap_or(peer))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Counts one request of `endpoint` for `account`; refuses it when over the limit.
    pub fn check(&self, req: &HttpRequest, endpoint: &'static str, account: &str) -> Result<(), AppError> {
        let Some(client) = self.client_addr(req) else { return Ok(()) };
        if let Some(l) = &self.per_client {
            l.check_key(&client).map_err(|n| refused(n.wait_time_from(DefaultClock::default().now())))?;
        }
        if let Some(l) = &self.per_account {
            // Long garbage account names never become long keys.
            let account: String = account.chars().take(64).collect();
            l.check_key(&(endpoint, account, client))
                .map_err(|n| refused(n.wait_time_from(DefaultClock::default().now())))?;
        }
        Ok(())
    }

    /// Forgets idle keys (called by the maintenance task) so memory stays bounded.
    pub fn prune(&self) {
        if let Some(l) = &self.per_account {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.per_client {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

fn refused(wait: Duration) -> AppError {
    AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
}

/// Parses `--trusted-proxy` values (CIDR or a single address).
pub fn parse_trusted(values: &[String]) -> Result<Vec<IpNet>, AppError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<IpNet>().or_else(|_| v.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                AppError::bad_request("invalid_trusted_proxy", format!("{v:?} is not a CIDR block or an IP address"))
            })
        })
        .collect()
}

/// A request body stream that fails when no chunk arrives within `idle`.
struct IdleBody {
    inner: actix_web::dev::Payload,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timed_out: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl futures_core::Stream for IdleBody {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(item)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.timed_out.store(true, std::sync::atomic::Ordering::Relaxed);
                    Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body stopped arriving",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Middleware: puts the request body under the idle timeout; a request whose body timed
/// out is answered 408 whatever its handler made of the broken body.
pub async fn body_idle_timeout<B: actix_web::body::MessageBody + 'static>(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<B>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error> {
    use actix_web::http::header;
    use actix_web::HttpMessage;
    let has_body =
        req.headers().contains_key(header::CONTENT_LENGTH) || req.headers().contains_key(header::TRANSFER_ENCODING);
    let idle = req
        .app_data::<actix_web::web::Data<crate::http::AppState>>()
        .map(|s| s.config.body_idle_timeout)
        .unwrap_or(Duration::from_secs(crate::config::DEFAULT_BODY_IDLE_SECONDS));
    if !has_body {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let timed_out = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let body = IdleBody {
        inner: req.take_payload(),
        idle,
        deadline: Box::pin(tokio::time::sleep(idle)),
        timed_out: timed_out.clone(),
    };
    type Boxed = std::pin::Pin<
        Box<dyn futures_core::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>>,
    >;
    let stream: Boxed = Box::pin(body);
    req.set_payload(actix_web::dev::Payload::from(stream));
    let scim = req.path().starts_with("/scim/");
    let res = next.call(req).await;
    if !timed_out.load(std::sync::atomic::Ordering::Relaxed) {
        return res.map(|r| r.map_into_left_body());
    }
    let error = AppError::BodyTimeout { seconds: idle.as_secs() };
    tracing::info!(seconds = idle.as_secs(), "request body stopped arriving; answered 408");
    let error: actix_web::Error = if scim {
        crate::http::scim::ScimReply::Failed(crate::service::scim::ScimFailure::App(error)).into()
    } else {
        error.into()
    };
    let request = match res {
        Ok(r) => r.into_parts().0,
        Err(_) => return Err(error),
    };
    let mut response = error.error_response();
    response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    Ok(actix_web::dev::ServiceResponse::new(request, response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(format!("{peer}:4000").parse().unwrap());
        if let Some(x) = xff {
            r = r.insert_header(("X-Forwarded-For", x));
        }
        r.to_http_request()
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let l = PublicLimiter::new(1, 1, parse_trusted(&["10.0.0.0/8".into()]).unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(l.client_addr(&req("203.0.113.9", Some("1.2.3.4"))), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(l.client_addr(&req("10.1.1.1", Some("6.6.6.6, 198.51.100.7, 10.2.2.2"))), ip("198.51.100.7"));
        assert_eq!(l.client_addr(&req("10.1.1.1", None)), ip("10.1.1.1"));
        assert!(parse_trusted(&["nope".into()]).is_err());
    }

    #[test]
    fn over_the_limit_is_refused_with_a_wait() {
        let l = PublicLimiter::new(1, 2, Vec::new());
        let r = req("192.0.2.1", None);
        assert!(l.check(&r, "acs", "a").is_ok());
        assert!(l.check(&r, "acs", "a").is_ok());
        let e = l.check(&r, "acs", "a").unwrap_err();
        assert!(matches!(e, AppError::RateLimited { retry_after_secs } if retry_after_secs >= 1));
        // Another account has its own bucket; another client too.
        assert!(l.check(&r, "acs", "b").is_ok());
        assert!(l.check(&req("192.0.2.2", None), "acs", "a").is_ok());
        assert!(PublicLimiter::new(0, 0, Vec::new()).check(&r, "acs", "a").is_ok(), "0 turns it off");
    }
}
