//! The console's pages at scale (issue 20): the super tenant's admin, signed in
//! through the code flow as a browser would be, reads pages of 100,000 users, 10,000
//! clients and 1,000,000 audit events. The goal is a p99 under 50 ms for any page,
//! and a page of at most a few tens of kilobytes.

use crate::html;
use crate::load::{Sessions, Target};
use crate::scenarios::steps;
use crate::ADMIN_PASSWORD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, Request, StatusCode};
use std::sync::Arc;

/// The largest page the check accepts.
const MAX_PAGE_BYTES: usize = 64 * 1024;

fn request(method: &str, path: &str, cookie: &str) -> hyper::http::request::Builder {
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "127.0.0.1");
    if cookie.is_empty() {
        builder
    } else {
        builder.header(COOKIE, cookie)
    }
}

fn get(path: &str, cookie: &str) -> Request<Full<Bytes>> {
    request("GET", path, cookie)
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

/// `name=value` of the cookie `name` that the answer sets.
fn cookie_set(headers: &HeaderMap, name: &str) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no cookie {name}"))
        .to_owned()
}

/// The path and query of a `Location`, absolute or not.
fn location(headers: &HeaderMap) -> String {
    let location = headers[LOCATION].to_str().expect("a location");
    match location.find("://") {
        Some(scheme) => {
            let after = &location[scheme + 3..];
            after[after.find('/').unwrap_or(after.len())..].to_owned()
        }
        None => location.to_owned(),
    }
}

/// Signs the super tenant's admin in to the console through the sign-in page; answers
/// the session cookie (`name=value`).
pub(crate) async fn sign_in(target: &Target) -> String {
    let (status, headers, _) = target
        .once_with_headers(get("/console/users", ""))
        .await
        .expect("the console");
    assert_eq!(status, StatusCode::SEE_OTHER);
    let flow = cookie_set(&headers, "__Host-portcullis_console_flow");
    let authorize = location(&headers);
    let (status, headers, page) = target
        .once_with_headers(get(&authorize, ""))
        .await
        .expect("the sign-in page");
    assert_eq!(status, StatusCode::OK);
    let csrf = cookie_set(&headers, "__Host-portcullis_csrf");
    let page = String::from_utf8_lossy(&page);
    let mut form = form_urlencoded::Serializer::new(String::new());
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "csrf",
    ] {
        form.append_pair(name, &html::field_value(&page, name));
    }
    form.append_pair("username", "admin")
        .append_pair("password", ADMIN_PASSWORD)
        .append_pair("action", "approve");
    let post = request("POST", "/oauth2/authorize", &csrf)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.finish())))
        .expect("a request");
    let (status, headers, _) = target.once_with_headers(post).await.expect("a sign-in");
    assert_eq!(status, StatusCode::SEE_OTHER, "signed in");
    let callback = location(&headers);
    let (status, headers, _) = target
        .once_with_headers(get(&callback, &flow))
        .await
        .expect("the callback");
    assert_eq!(status, StatusCode::SEE_OTHER, "the code redeemed");
    cookie_set(&headers, "__Host-portcullis_console")
}

/// GETs as the signed-in admin the console pages `path_of` gives for a number each
/// connection moves on by `stride`; an answer is right when it is a whole page, not
/// too large, holding `marker` (rows of the list, not its empty state).
fn pages(
    cookie: &str,
    stride: usize,
    marker: &'static str,
    path_of: impl Fn(usize) -> String + Send + Sync + 'static,
) -> Sessions {
    let (cookie, path_of) = (cookie.to_owned(), Arc::new(path_of));
    Arc::new(move |n| {
        let (cookie, path_of) = (cookie.clone(), path_of.clone());
        let mut next = n.wrapping_mul(7_919);
        steps(
            move || {
                next = next.wrapping_add(stride);
                Some(get(&path_of(next), &cookie))
            },
            move |status, body| {
                status == StatusCode::OK
                    && body.len() <= MAX_PAGE_BYTES
                    && body.ends_with(b"</html>")
                    && body.windows(marker.len()).any(|w| w == marker.as_bytes())
            },
        )
    })
}

/// The console's scenarios, by name: `users` and `clients` are how many the super
/// tenant holds, `cursors` are cursors into its users, `days` the days of its events.
pub(crate) fn scenarios(
    cookie: &str,
    users: usize,
    clients: usize,
    cursors: Arc<Vec<String>>,
    days: Vec<String>,
) -> Vec<(&'static str, Sessions)> {
    let days = Arc::new(days);
    let until = days.clone();
    vec![
        (
            "users page at a random depth",
            pages(cookie, 31, "<td>api</td>", move |n| {
                let cursor = &cursors[n % cursors.len()];
                format!("/console/users?after={cursor}")
            }),
        ),
        (
            "users by a prefix",
            pages(cookie, 37, "<td>api</td>", move |n| {
                format!("/console/users?q=user-{:04}", n % (users / 100))
            }),
        ),
        (
            "a user",
            pages(cookie, 41, "Live grants", move |n| {
                format!("/console/users/user-{:06}", n % users)
            }),
        ),
        (
            "clients by a prefix",
            pages(cookie, 43, "<td>api</td>", move |n| {
                format!("/console/clients?q=client-{:03}", n % (clients / 100))
            }),
        ),
        (
            "audit until a random day",
            pages(cookie, 47, "<td>admin</td>", move |n| {
                format!("/console/audit?until={}", until[n % until.len()])
            }),
        ),
        (
            "audit of a rare action",
            pages(cookie, 53, "<td>key.rotate", move |n| {
                format!(
                    "/console/audit?action=key.rotate&until={}",
                    days[n % days.len()]
                )
            }),
        ),
    ]
}
