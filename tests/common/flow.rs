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
    let url = format!("{}{prefix}/oauth2/authorize?{}", s.base, encode_form(query));
    let r = s.client.get(url).send().await.unwrap();
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
        .header("Cookie", page.cookie())
        .body(encode_form(&pairs))
        .send()
        .await
        .unwrap();
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
