//! The layering rule of ARCHITECTURE.md, checked on the source: the arrows point inward.
//! HTTP and the CLI are adapters at the edge; nothing below them may name them, and the
//! pure cores (`domain`, `scim`) name no storage or service code either.

use std::path::{Path, PathBuf};

/// Layers and the paths they must never name (in code; comments are free to mention them).
const RULES: &[(&str, &[&str])] = &[
    // The domain's enums derive diesel's marker traits (AsExpression, FromSqlRow) so rows can
    // hold them; their SQL conversions live in `store::types`. Queries stay out.
    (
        "domain",
        &[
            "actix",
            "clap",
            "crate::http",
            "crate::cli",
            "crate::store",
            "crate::provisioning",
            "crate::service",
            "diesel::prelude",
            "RunQueryDsl",
            "diesel::dsl",
        ],
    ),
    (
        "scim",
        &[
            "actix",
            "clap",
            "crate::http",
            "crate::cli",
            "crate::store",
            "crate::provisioning",
            "crate::service",
            "diesel",
        ],
    ),
    ("provisioning", &["actix", "clap", "crate::http", "crate::cli", "crate::service"]),
    ("store", &["actix", "clap", "crate::http", "crate::cli", "crate::service"]),
    ("saml", &["actix", "clap", "crate::http", "crate::cli"]),
    ("service", &["actix", "clap", "crate::http", "crate::cli"]),
    ("mail", &["actix", "clap", "crate::http", "crate::cli", "crate::service"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of one line: everything before a `//` comment (string literals holding `//`
/// do not occur in the names we look for, so the cut is safe for this purpose).
fn code_of(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

#[test]
fn inner_layers_never_import_http_or_the_cli() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (layer, banned) in RULES {
        let root = src.join(layer);
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let single = src.join(format!("{layer}.rs"));
        if single.exists() {
            files.push(single);
        }
        assert!(!files.is_empty(), "layer {layer} has no source files; update RULES");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = code_of(line);
                for name in *banned {
                    if code.contains(name) {
                        let rel = file.strip_prefix(&src).unwrap().display().to_string();
                        violations.push(format!("src/{rel}:{}: `{name}` in layer {layer}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
}

#[test]
fn the_guard_sees_a_violation() {
    // The check itself must be able to fail: a line naming actix is caught, a comment is not.
    assert!(code_of("use actix_web::HttpResponse;").contains("actix"));
    assert!(!code_of("//! Nothing here knows actix").contains("actix"));
    assert!(!code_of("let x = 1; // not crate::http").contains("crate::http"));
}

#[test]
fn architecture_names_every_module() {
    // ARCHITECTURE.md's code map names every module (as `name`, `name/` or its path), so the
    // map stays the territory when a module is added.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut missing = Vec::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        let name = if stem == "mod" {
            file.parent().unwrap().file_name().unwrap().to_string_lossy().to_string()
        } else {
            stem
        };
        let named =
            [format!("`{name}`"), format!("`{name}/`"), format!("{name}.rs"), format!("/{name}/"), format!("`{name} ")]
                .iter()
                .any(|form| map.contains(form.as_str()));
        if !named {
            missing.push(file.strip_prefix(root).unwrap().display().to_string());
        }
    }
    assert!(missing.is_empty(), "modules ARCHITECTURE.md does not name:\n{}", missing.join("\n"));
}
