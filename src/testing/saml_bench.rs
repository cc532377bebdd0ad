//! Throughput measurement of response verification, for the project's
//! `bench` subcommand.
//!
//! [`bench_bare_verify`] measures samael alone: `ServiceProvider::
//! parse_base64_response` (base64, libxml2 parse, libxmlsec1 verification,
//! reduction, samael's own checks) configured from the same
//! [`SpValidationConfig`], with IdP-initiated allowed so InResponseTo plays
//! no part. [`bench_full_validate`] measures [`validate_response`], i.e.
//! the same plus the pre-scan and our SAML checks. Both run the same
//! response in a loop on `threads` threads for `duration` and return
//! operations per second. The response must validate once first (it is
//! checked), or the numbers would measure error paths.

use std::time::{Duration, Instant};

use chrono::Utc;
use samael::key_info::{KeyInfo, X509Data};
use samael::metadata::{EntityDescriptor, IdpSsoDescriptor, KeyDescriptor};
use samael::service_provider::ServiceProvider;

use crate::saml::quiet::silence_xml_libraries;
use crate::saml::refusal::{sanitize, SamlRefusal};
use crate::saml::validate::{validate_response, AcsInput, OutstandingRequest, SpValidationConfig, STRONG_ALGORITHMS};
use crate::saml::xml::NS_PROTOCOL;

/// Why a benchmark did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BenchError {
    /// Our validator refuses the response.
    #[error("the response is refused: {0}")]
    Refused(#[from] SamlRefusal),
    /// samael refuses the response.
    #[error("samael refuses the response: {0}")]
    SamaelRefused(String),
    /// `threads` was zero.
    #[error("at least one thread is needed")]
    NoThreads,
}

/// Result of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchReport {
    /// Threads used.
    pub threads: usize,
    /// Completed verifications.
    pub operations: u64,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// `operations / elapsed`.
    pub per_second: f64,
}

/// samael's ServiceProvider equivalent to `cfg` (IdP-initiated allowed).
fn samael_service_provider(cfg: &SpValidationConfig) -> ServiceProvider {
    let key_descriptors = cfg
        .idp_certificates
        .iter()
        .map(|cert| KeyDescriptor {
            key_use: Some("signing".to_string()),
            key_info: KeyInfo { id: None, x509_data: Some(X509Data { certificates: vec![cert.to_base64()] }) },
            encryption_methods: None,
        })
        .collect();
    let idp_metadata = EntityDescriptor {
        entity_id: Some(cfg.idp_entity_id.clone()),
        idp_sso_descriptors: Some(vec![IdpSsoDescriptor {
            id: None,
            valid_until: None,
            cache_duration: None,
            protocol_support_enumeration: Some(NS_PROTOCOL.to_string()),
            error_url: None,
            signature: None,
            key_descriptors,
            organization: None,
            contact_people: Vec::new(),
            artifact_resolution_service: Vec::new(),
            single_logout_services: Vec::new(),
            manage_name_id_services: Vec::new(),
            name_id_formats: Vec::new(),
            want_authn_requests_signed: None,
            single_sign_on_services: Vec::new(),
            name_id_mapping_services: Vec::new(),
            assertion_id_request_services: Vec::new(),
            attribute_profiles: Vec::new(),
            attributes: Vec::new(),
        }]),
        ..EntityDescriptor::default()
    };
    ServiceProvider {
        entity_id: Some(cfg.sp_entity_id.clone()),
        acs_url: Some(cfg.acs_url.clone()),
        idp_metadata,
        allow_idp_initiated: true,
        max_clock_skew: cfg.clock_skew,
        max_issue_delay: cfg.clock_skew + cfg.max_response_age,
        allowed_signature_algorithms: if cfg.allow_sha1 { None } else { Some(STRONG_ALGORITHMS.to_vec()) },
        ..ServiceProvider::default()
    }
}

fn run<F>(threads: usize, duration: Duration, make_worker: F) -> Result<BenchReport, BenchError>
where
    F: Fn() -> Box<dyn FnMut() -> bool + Send> + Sync,
{
    if threads == 0 {
        return Err(BenchError::NoThreads);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let operations: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mut work = make_worker();
                scope.spawn(move || {
                    silence_xml_libraries();
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        if work() {
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    let elapsed = start.elapsed();
    Ok(BenchReport {
        threads,
        operations,
        elapsed,
        per_second: operations as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
    })
}

/// Bare samael parse + verify of `saml_response` (base64), in operations per
/// second over `threads` threads during `duration`.
pub fn bench_bare_verify(
    saml_response: &str,
    cfg: &SpValidationConfig,
    threads: usize,
    duration: Duration,
) -> Result<BenchReport, BenchError> {
    if cfg.idp_certificates.is_empty() {
        return Err(SamlRefusal::NoSigningCertificate.into());
    }
    silence_xml_libraries();
    let sp = samael_service_provider(cfg);
    sp.parse_base64_response(saml_response, None).map_err(|e| BenchError::SamaelRefused(sanitize(&e.to_string())))?;
    let response = saml_response.to_string();
    run(threads, duration, || {
        let sp = sp.clone();
        let response = response.clone();
        Box::new(move || sp.parse_base64_response(&response, None).is_ok())
    })
}

/// [`validate_response`] of `saml_response` (base64) answering
/// `in_response_to`, in operations per second over `threads` threads during
/// `duration`.
pub fn bench_full_validate(
    saml_response: &str,
    in_response_to: Option<&str>,
    cfg: &SpValidationConfig,
    threads: usize,
    duration: Duration,
) -> Result<BenchReport, BenchError> {
    let validate_once = |response: &str, irt: Option<&str>| {
        let input = AcsInput {
            saml_response: response,
            relay_state: None,
            outstanding_request: match irt {
                Some(id) => OutstandingRequest::Id(id),
                None => OutstandingRequest::None,
            },
        };
        validate_response(&input, cfg, Utc::now())
    };
    validate_once(saml_response, in_response_to)?;
    let response = saml_response.to_string();
    let irt = in_response_to.map(str::to_string);
    let cfg = cfg.clone();
    run(threads, duration, || {
        let response = response.clone();
        let irt = irt.clone();
        let cfg = cfg.clone();
        Box::new(move || {
            let input = AcsInput {
                saml_response: &response,
                relay_state: None,
                outstanding_request: match irt.as_deref() {
                    Some(id) => OutstandingRequest::Id(id),
                    None => OutstandingRequest::None,
                },
            };
            validate_response(&input, &cfg, Utc::now()).is_ok()
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::saml::test_idp::{IdpShape, ResponseSpec, SigningKey};

    const SP: &str = "https://sp.example/saml";
    const ACS: &str = "https://sp.example/acs";

    fn setup(shape: IdpShape) -> (String, SpValidationConfig) {
        let idp = crate::testing::fixture_idp().unwrap();
        let spec = ResponseSpec::new(shape, SP, ACS).in_response_to("_bench");
        let cfg = SpValidationConfig::new(shape.entity_id(), vec![idp.certificate(SigningKey::IdpA).unwrap()], SP, ACS);
        (idp.sign_response(&spec).unwrap(), cfg)
    }

    /// Seconds per run; `PROVISOR_SAML_BENCH_SECS` overrides for measurements.
    fn run_time() -> Duration {
        let secs = std::env::var("PROVISOR_SAML_BENCH_SECS").ok().and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.2);
        Duration::from_secs_f64(secs)
    }

    #[test]
    fn bare_and_full_rates_on_one_and_two_threads() {
        for shape in [IdpShape::Okta, IdpShape::EntraId] {
            let (response, cfg) = setup(shape);
            for threads in [1, 2] {
                let bare = bench_bare_verify(&response, &cfg, threads, run_time()).unwrap();
                let full = bench_full_validate(&response, Some("_bench"), &cfg, threads, run_time()).unwrap();
                println!(
                    "{shape:?} threads={threads}: bare samael {:.0}/s, full validation {:.0}/s",
                    bare.per_second, full.per_second
                );
                assert!(bare.operations > 0 && full.operations > 0);
                assert_eq!(bare.threads, threads);
            }
        }
    }

    #[test]
    fn refused_responses_are_not_benchmarked() {
        let (response, mut cfg) = setup(IdpShape::Okta);
        cfg.idp_certificates = vec![crate::testing::fixture_idp().unwrap().certificate(SigningKey::Attacker).unwrap()];
        assert!(matches!(
            bench_bare_verify(&response, &cfg, 1, Duration::from_millis(10)),
            Err(BenchError::SamaelRefused(_))
        ));
        assert!(matches!(
            bench_full_validate(&response, Some("_bench"), &cfg, 1, Duration::from_millis(10)),
            Err(BenchError::Refused(_))
        ));
        let (response, cfg) = setup(IdpShape::Okta);
        assert_eq!(bench_bare_verify(&response, &cfg, 0, Duration::from_millis(10)), Err(BenchError::NoThreads));
    }
}
