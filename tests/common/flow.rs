//! The authorization code flow as a browser walks it: open the sign-in page, submit
//! its form, read the redirect; shared by the tests of the flow and of OpenID Connect.

use super::{encode_form, random_suffix, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = format!("{}{}", random_suffix(), "v".repeat(40));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A browser's cookies for the test server: what `Set-Cookie` set, sent back with
/// every request (the tests' site is one origin, and every cookie is `Path=/`).
#[derive(Debug, Default, Clone)]
pub struct Jar {
    cookies: Vec<(String, String)>,
    /// Every `Set-Cookie` line received, attributes and all.
    pub set_lines: Vec<String>,
}

impl Jar {
    /// Keeps what the answer's `Set-Cookie` headers set, and drops what they expire.
    pub fn take(&mut self, headers: &reqwest::header::HeaderMap) {
        for set in headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            self.set_lines.push(set.to_owned());
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.retain(|(n, _)| n != name);
            } else {
                self.set(name, value);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.cookies.retain(|(n, _)| n != name);
        self.cookies.push((name.to_owned(), value.to_owned()));
    }

    /// The `Cookie` header a browser would send.
    pub fn header(&self) -> String {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        pairs.join("; ")
    }
}

/// The sign-in page as a browser gets it.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    pub fn hidden(&self, name: &str) -> String {
        super::html::field_value(&self.html, name)
    }

    /// The `name=value` of the CSRF cookie the page set.
    pub fn cookie(&self) -> String {
        let set = self.headers["set-cookie"].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }
}

pub async fn open(s: &TestServer, prefix: &str, query: &[(&str, &str)]) -> Page {
    open_in(s, prefix, query, &mut Jar::default()).await
}

/// Opens the authorization endpoint as a browser holding `jar`, which keeps what the
/// answer sets.
pub async fn open_in(s: &TestServer, prefix: &str, query: &[(&str, &str)], jar: &mut Jar) -> Page {
    let url = format!("{}{prefix}/oauth2/authorize?{}", s.base, encode_form(query));
    let r = s
        .client
        .get(url)
        .header("Cookie", jar.header())
        .send()
        .await
        .unwrap();
    jar.take(r.headers());
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        html: r.text().await.unwrap(),
    }
}

/// Posts the sign-in form of `page` with these credentials; answers (status, Location).
pub async fn submit(
    s: &TestServer,
    prefix: &str,
    page: &Page,
    user: &str,
    password: &str,
    action: &str,
) -> (u16, Option<String>, String) {
    let mut jar = Jar::default();
    jar.take(&page.headers);
    submit_in(s, prefix, page, user, password, action, &mut jar).await
}

/// [`submit`] as a browser holding `jar` (with the page's CSRF cookie), which keeps
/// what the answer sets: the single sign-on session's cookie after a sign-in.
pub async fn submit_in(
    s: &TestServer,
    prefix: &str,
    page: &Page,
    user: &str,
    password: &str,
    action: &str,
    jar: &mut Jar,
) -> (u16, Option<String>, String) {
    let mut form: Vec<(String, String)> = Vec::new();
    for name in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
        "csrf",
    ] {
        if page.html.contains(&format!("name=\"{name}\"")) {
            form.push((name.to_owned(), page.hidden(name)));
        }
    }
    form.push(("username".into(), user.into()));
    form.push(("password".into(), password.into()));
    form.push(("action".into(), action.into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = s
        .client
        .post(format!("{}{prefix}/oauth2/authorize", s.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Cookie", jar.header())
        .body(encode_form(&pairs))
        .send()
        .await
        .unwrap();
    jar.take(r.headers());
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, r.text().await.unwrap())
}

pub fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
