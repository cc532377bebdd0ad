//! DNS TXT lookups for domain verification, behind a trait so tests use a static table
//! (no test ever sends a query) and servers use the system's resolver.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};

pub type TxtFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send + 'a>>;

/// Looks up the TXT records of a name (each record's strings joined).
pub trait TxtResolver: Send + Sync {
    fn txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a>;
}

/// The system's resolver (`/etc/resolv.conf`), created at the first lookup.
#[derive(Default)]
pub struct SystemResolver(OnceLock<Result<hickory_resolver::TokioAsyncResolver, String>>);

impl TxtResolver for SystemResolver {
    fn txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a> {
        Box::pin(async move {
            let resolver = self
                .0
                .get_or_init(|| {
                    hickory_resolver::TokioAsyncResolver::tokio_from_system_conf().map_err(|e| e.to_string())
                })
                .as_ref()
                .map_err(|e| format!("no DNS resolver: {e}"))?;
            let found = resolver.txt_lookup(name).await.map_err(|e| e.to_string())?;
            Ok(found
                .iter()
                .map(|txt| txt.iter().map(|part| String::from_utf8_lossy(part).into_owned()).collect::<String>())
                .collect())
        })
    }
}

/// A fixed table of TXT records (tests; air-gapped installations that approve by hand).
#[derive(Default)]
pub struct StaticResolver(Mutex<HashMap<String, Vec<String>>>);

impl StaticResolver {
    pub fn set(&self, name: &str, values: Vec<String>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(name.to_ascii_lowercase(), values);
        }
    }
}

impl TxtResolver for StaticResolver {
    fn txt<'a>(&'a self, name: &'a str) -> TxtFuture<'a> {
        let found = match self.0.lock() {
            Ok(m) => Ok(m.get(&name.to_ascii_lowercase()).cloned().unwrap_or_default()),
            Err(_) => Err("resolver table poisoned".to_owned()),
        };
        Box::pin(async move { found })
    }
}
