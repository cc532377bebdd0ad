//! Tests of the SAML service provider against the test IdP.

mod attacks;
mod dom;
mod fuzz;
mod happy;
mod stderr;
mod support;
