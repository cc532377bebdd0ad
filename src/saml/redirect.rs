//! Where a browser may be sent after a login. RelayState arrives unauthenticated (the
//! IdP only echoes it), so an open redirect would turn our login page into a phishing
//! helper: only local paths and configured absolute prefixes pass.

/// Longest target accepted.
pub const MAX_TARGET_BYTES: usize = 1024;

/// The target if it is safe: a local path (`/…`, not `//…` or with backslashes), an URL
/// under `public_url`, or an URL under one of the `allowed` prefixes (same scheme, host
/// and port, path under the prefix's path on a segment boundary).
pub fn safe_target(target: &str, public_url: &str, allowed: &[String]) -> Option<String> {
    if target.is_empty() || target.len() > MAX_TARGET_BYTES || target.chars().any(|c| c.is_control() || c == '\\') {
        return None;
    }
    if target.starts_with('/') {
        return (!target.starts_with("//")).then(|| target.to_owned());
    }
    let url = url::Url::parse(target).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let under = |prefix: &str| -> bool {
        let Ok(p) = url::Url::parse(prefix) else { return false };
        if p.scheme() != url.scheme()
            || p.host_str() != url.host_str()
            || p.port_or_known_default() != url.port_or_known_default()
        {
            return false;
        }
        let base = p.path().trim_end_matches('/');
        let path = url.path();
        path == base || path.starts_with(&format!("{base}/"))
    };
    (under(public_url) || allowed.iter().any(|a| under(a))).then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_target;

    const PUBLIC: &str = "https://sso.example.com";

    #[test]
    fn table() {
        let allowed = vec!["https://app.example.com/portal".to_owned()];
        let cases: &[(&str, Option<&str>)] = &[
            ("/dashboard?tab=1", Some("/dashboard?tab=1")),
            ("/", Some("/")),
            ("//evil.example/x", None),
            ("/\\evil.example", None),
            ("/ok\r\nSet-Cookie: x", None),
            ("https://sso.example.com/home", Some("https://sso.example.com/home")),
            ("https://app.example.com/portal", Some("https://app.example.com/portal")),
            ("https://app.example.com/portal/x", Some("https://app.example.com/portal/x")),
            ("https://app.example.com/portalx", None),
            ("https://app.example.com:8443/portal", None),
            ("http://app.example.com/portal", None),
            ("https://evil.example/portal", None),
            ("https://app.example.com@evil.example/portal", None),
            ("https://user@app.example.com/portal", None),
            ("javascript:alert(1)", None),
            ("data:text/html,x", None),
            ("evil.example", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(safe_target(input, PUBLIC, &allowed).as_deref(), *want, "{input:?}");
        }
        assert_eq!(safe_target(&format!("/{}", "a".repeat(2000)), PUBLIC, &allowed), None);
    }
}
