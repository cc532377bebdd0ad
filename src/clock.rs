//! Time, injectable: the server reads the clock through [`Clock`] so tests can move it
//! (invitation expiry, SAML validity windows) without sleeping.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Duration, NaiveDateTime, Timelike, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// The current time as stored in the database (UTC, no zone), to the microsecond:
    /// PostgreSQL keeps microseconds, so both backends then store the same instant.
    fn now_naive(&self) -> NaiveDateTime {
        let t = self.now().naive_utc();
        t.with_nanosecond(t.nanosecond() / 1_000 * 1_000).unwrap_or(t)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that runs with the system clock, shifted by an offset tests can change.
#[derive(Debug, Default, Clone)]
pub struct ShiftedClock {
    offset: Arc<RwLock<Duration>>,
}

impl ShiftedClock {
    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.write() {
            *o += by;
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.read().map(|o| *o).unwrap_or_else(|_| Duration::zero());
        Utc::now() + offset
    }
}

pub type SharedClock = Arc<dyn Clock>;

pub fn to_utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

/// Serde helpers: timestamps leave the API as RFC 3339 in UTC (`2026-01-02T03:04:05.123Z`).
pub mod rfc3339 {
    use chrono::{NaiveDateTime, SecondsFormat};
    use serde::Serializer;

    pub fn format(t: &NaiveDateTime) -> String {
        super::to_utc(*t).to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub mod option {
        use chrono::NaiveDateTime;
        use serde::Serializer;

        pub fn serialize<S: Serializer>(t: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::format(t)),
                None => s.serialize_none(),
            }
        }
    }
}
