//! Fault hooks for crash tests: named points where a test-support build aborts the process
//! when `PROVISOR_FAULT` names them (comma-separated), as a `kill -9` would at that instant.
//! Without the `test-support` feature every hook compiles to nothing.
//!
//! Points:
//! - `after_commit:membership` — a write transaction that changed a group membership (and
//!   wrote its membership event) has committed; nothing after it has run.
//! - `after_commit:user` — the same for a transaction that created, changed or deleted a user.
//! - `after_commit` — any write transaction has committed.
//! - `mail:after_accept` — the SMTP server accepted an outbox mail; its row is not yet marked
//!   sent (the window in which a crash sends a mail twice).
//! - `migrate-data:after_table:N` — `migrate-data` committed its N-th table of this run.
//!
//! Failure points (the operation fails as if the database had gone away; the process lives):
//! - `import:second_batch` — the second batch of an import cannot be applied.
//! - `migrate-data:second_batch` — the second insert batch of a table fails (the table rolls back).
//! - `migrate-data:tamper` — a copied value is changed on the target before verification.

#[cfg(feature = "test-support")]
mod enabled {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::sync::OnceLock;

    fn armed() -> &'static BTreeSet<String> {
        static ARMED: OnceLock<BTreeSet<String>> = OnceLock::new();
        ARMED.get_or_init(|| {
            std::env::var("PROVISOR_FAULT")
                .map(|v| v.split(',').map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect())
                .unwrap_or_default()
        })
    }

    thread_local! {
        static TOUCHED: RefCell<BTreeSet<&'static str>> = const { RefCell::new(BTreeSet::new()) };
    }

    pub fn point(name: &str) {
        if armed().contains(name) {
            eprintln!("PROVISOR_FAULT: aborting at {name}");
            std::process::abort();
        }
    }

    pub fn touched(kind: &'static str) {
        if !armed().is_empty() {
            TOUCHED.with(|t| t.borrow_mut().insert(kind));
        }
    }

    pub fn committed() {
        if armed().is_empty() {
            return;
        }
        let kinds: Vec<&'static str> = TOUCHED.with(|t| std::mem::take(&mut *t.borrow_mut())).into_iter().collect();
        point("after_commit");
        for kind in kinds {
            point(&format!("after_commit:{kind}"));
        }
    }

    pub fn fails(name: &str) -> bool {
        armed().contains(name)
    }

    pub fn rolled_back() {
        TOUCHED.with(|t| t.borrow_mut().clear());
    }
}

/// Aborts the process here when `PROVISOR_FAULT` names this point.
#[inline]
pub fn point(_name: &str) {
    #[cfg(feature = "test-support")]
    enabled::point(_name);
}

/// The current write transaction changed this kind of row (`membership`, `user`).
#[inline]
pub fn touched(_kind: &'static str) {
    #[cfg(feature = "test-support")]
    enabled::touched(_kind);
}

/// The current write transaction committed: fires `after_commit` and `after_commit:<kind>`.
#[inline]
pub fn committed() {
    #[cfg(feature = "test-support")]
    enabled::committed();
}

/// The current write transaction rolled back: forget what it touched.
#[inline]
pub fn rolled_back() {
    #[cfg(feature = "test-support")]
    enabled::rolled_back();
}

/// True when `PROVISOR_FAULT` names this failure point (always false without the feature).
#[inline]
pub fn fails(_name: &str) -> bool {
    #[cfg(feature = "test-support")]
    return enabled::fails(_name);
    #[cfg(not(feature = "test-support"))]
    false
}
