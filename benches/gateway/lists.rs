//! The admin lists at scale (issue 19): one tenant with 100,000 users and 1,000,000
//! audit events, its pages read at random depths by a few admins at once, on SQLite
//! and on PostgreSQL. The goal is a p99 under 50 ms for any page. The console's pages
//! (`console.rs`) are read from the same database, with 10,000 clients besides.

use crate::load::{Plan, Sessions, Target};
use crate::process::Server;
use crate::scenarios::{basic, get, portcullis, steps};
use crate::{console, fill, fixtures, measure, Options, Row, Workspace, ADMIN_PASSWORD};
use hyper::StatusCode;
use std::sync::Arc;

/// Users and audit events the tenant holds.
const USERS: usize = 100_000;
const EVENTS: usize = 1_000_000;
const CLIENTS: usize = 10_000;
/// The first audit event's time: recent enough that the server's purge (365 days)
/// leaves the events alone while they are read.
static FIRST_AT: std::sync::LazyLock<i64> =
    std::sync::LazyLock::new(|| portcullis::service::now() - count(EVENTS) - 86_400);
/// Admins reading at once: a console's load, not a flood.
pub(crate) const CONNECTIONS: usize = 8;

/// The rows of both databases (PostgreSQL when `postgres` is `Some`).
pub(crate) async fn rows(
    workspace: &Workspace,
    options: &Options,
    plan: Plan,
    postgres: Option<String>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    // Filling a million events is worth it only when a row here is wanted.
    let wanted = |group: &str| {
        options
            .only
            .is_none_or(|only| group.contains(only) || only.starts_with(group))
    };
    if !wanted("admin list") && !wanted("console") {
        return rows;
    }
    let tenants = workspace.disk.path().join("tenants");
    let sqlite = format!(
        "sqlite://{}",
        workspace.disk.path().join("lists.db").display()
    );
    let databases = [("SQLite", Some(sqlite)), ("PostgreSQL", postgres)];
    for (backend, url) in databases {
        let Some(url) = url else { continue };
        let (server, target) = portcullis(workspace, "lists", &url, &tenants).await;
        fill(&url).await;
        let cursors = user_cursors(&target).await;
        let scenarios = [
            ("users page at a random depth", users_at(cursors.clone())),
            ("users by a prefix", users_by_prefix()),
            ("audit page at a random depth", audit_at()),
            ("audit of a rare action", audit_of_rare_action()),
        ];
        for (what, sessions) in &scenarios {
            let name = format!("admin list: {what}, {backend}");
            rows.extend(measure(options, &name, &target, &server, plan, sessions).await);
        }
        let cookie = console::sign_in(&target).await;
        let pages = console::scenarios(&cookie, USERS, CLIENTS, cursors.clone(), event_days());
        for (what, sessions) in &pages {
            let name = format!("console: {what}, {backend}");
            rows.extend(measure(options, &name, &target, &server, plan, sessions).await);
        }
        drop::<Server>(server);
    }
    rows
}

/// The users and the audit events, written straight into the super tenant's tables.
async fn fill(url: &str) {
    eprintln!("bench: storing {USERS} users and {EVENTS} audit events");
    let store = portcullis::store::connect(url).await.expect("the store");
    let tenant = fixtures::tenant_id(&*store, "carbon.super").await.get();
    store.close().await;
    fill::fill_lists(url, tenant, count(USERS), count(EVENTS), *FIRST_AT).await;
    fill::fill_clients(url, tenant, count(CLIENTS)).await;
}

/// The days (`YYYY-MM-DD`, UTC) the audit events fall on.
fn event_days() -> Vec<String> {
    let first = u64::try_from(*FIRST_AT).expect("a time");
    let last = first + u64::try_from(EVENTS).expect("a count");
    (first / 86_400..=last / 86_400)
        .map(|day| portcullis::logging::date_and_time(day * 86_400)[..10].to_owned())
        .collect()
}

fn count(n: usize) -> i64 {
    i64::try_from(n).expect("a count")
}

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

/// Cursors every 1,000 users deep, from walking the list once.
async fn user_cursors(target: &Target) -> Arc<Vec<String>> {
    let mut cursors = Vec::new();
    let mut path = "/api/v1/users?limit=1000".to_owned();
    loop {
        let (status, body) = target.once(get(&path, &admin())).await.expect("a page");
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let page: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let Some(next) = page["next"].as_str() else {
            break;
        };
        cursors.push(next.to_owned());
        path = format!("/api/v1/users?limit=1000&after={next}");
    }
    assert!(
        cursors.len() >= USERS / 1000 - 1,
        "{} cursors",
        cursors.len()
    );
    Arc::new(cursors)
}

/// GETs as the admin of the paths `path_of` gives for a number that each connection
/// moves on by `stride` from its own start; an answer is right when `key` holds
/// something (the last pages hold fewer than a full page).
fn gets(
    stride: usize,
    key: &'static str,
    path_of: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Sessions {
    let path_of = Arc::new(path_of);
    Arc::new(move |n| {
        let (admin, path_of) = (admin(), path_of.clone());
        let mut next = n.wrapping_mul(7_919);
        steps(
            move || {
                next = next.wrapping_add(stride);
                Some(get(&path_of(next), &admin))
            },
            move |status, body| {
                let page: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
                status == StatusCode::OK
                    && page[key].as_array().is_some_and(|items| !items.is_empty())
            },
        )
    })
}

/// Pages of 100 users from a cursor picked anew each time.
fn users_at(cursors: Arc<Vec<String>>) -> Sessions {
    gets(31, "users", move |n| {
        let cursor = &cursors[n % cursors.len()];
        format!("/api/v1/users?limit=100&after={cursor}")
    })
}

/// The 100 users whose names start with a random 4-digit prefix.
fn users_by_prefix() -> Sessions {
    gets(37, "users", |n| {
        format!("/api/v1/users?q=user-{:04}", n % (USERS / 100))
    })
}

/// Pages of 100 events older than a random event.
fn audit_at() -> Sessions {
    gets(104_729, "events", |n| {
        let before = 1_000 + n % (EVENTS - 1_000);
        format!("/api/v1/audit?limit=100&before={before}")
    })
}

/// Ten key rotations (one event in 10,000), newest first, before a random time.
fn audit_of_rare_action() -> Sessions {
    gets(104_729, "events", |n| {
        let until = *FIRST_AT + count(EVENTS) - count(n % (EVENTS / 2));
        format!("/api/v1/audit?action=key.rotate&limit=10&until={until}")
    })
}
