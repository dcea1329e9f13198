//! The floors of ARCHITECTURE.md, checked on the source: which layer may name which,
//! and the one way a write reaches the caches. A review can miss an import; this
//! cannot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// The code of a file without its comments, line by line with line numbers.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or("").to_owned()))
        .collect()
}

/// Every code line below `dir` that holds `needle`, as `path:line: code`.
fn places(dir: &Path, needle: &str) -> Vec<String> {
    sources(dir)
        .iter()
        .flat_map(|path| {
            code_lines(path)
                .into_iter()
                .filter(|(_, line)| line.contains(needle))
                .map(move |(number, line)| format!("{}:{number}: {}", path.display(), line.trim()))
        })
        .collect()
}

/// The places below `src/{layer}` that name any of `forbidden`.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(layer);
    forbidden
        .iter()
        .flat_map(|name| places(&root, name))
        .collect()
}

#[test]
fn the_domain_is_pure() {
    let forbidden = [
        "crate::service",
        "crate::store",
        "crate::http",
        "crate::server",
        "crate::config",
        "sqlx",
        "hyper",
        "tokio",
        "SystemTime",
        "Instant",
        "std::fs",
        "std::net",
    ];
    assert_eq!(violations("domain", &forbidden), Vec::<String>::new());
}

#[test]
fn the_store_knows_nothing_above_it() {
    let forbidden = ["crate::service", "crate::http", "crate::server", "hyper"];
    assert_eq!(violations("store", &forbidden), Vec::<String>::new());
}

#[test]
fn the_use_cases_know_nothing_of_http() {
    let forbidden = ["crate::http", "crate::server", "hyper::"];
    assert_eq!(violations("service", &forbidden), Vec::<String>::new());
}

/// `Gateway::store` is for tests and tools; the request path goes through use cases.
#[test]
fn http_reaches_the_store_only_through_the_gateway() {
    let forbidden = ["crate::store", "crate::server", "sqlx", ".store()"];
    assert_eq!(violations("http", &forbidden), Vec::<String>::new());
}

#[test]
fn the_server_reaches_the_store_only_through_the_gateway() {
    let forbidden = ["crate::store", "sqlx", ".store()"];
    assert_eq!(violations("server", &forbidden), Vec::<String>::new());
}

/// A write's result comes out of `Committed` only through `Caches`, and the gateway is
/// the one implementation: no other code can take a result and leave the caches stale.
#[test]
fn the_gateway_is_the_only_cache_that_settles_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let implementations = places(&root, "impl Caches for");
    assert_eq!(implementations.len(), 1, "{implementations:#?}");
    assert!(implementations[0].contains("impl Caches for Gateway"));
}
