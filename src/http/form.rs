//! Strict `application/x-www-form-urlencoded` bodies: invalid UTF-8 and duplicated
//! parameters are errors (RFC 6749 §3.1), never silently repaired.

use super::ApiError;
use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::Request;

pub(super) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub(super) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match part.iter().position(|b| *b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        if let Some(name) = repeated_name(&pairs) {
            return Err(ApiError::BadRequest(format!(
                "the parameter {name:?} is repeated"
            )));
        }
        Ok(Form { pairs })
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The names of the parameters, in order.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(n, _)| n.as_str())
    }

    /// Like [`Form::get`], treating an empty value as absent.
    pub(super) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    pub(super) fn take(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(n, _)| n == name)?;
        Some(self.pairs.swap_remove(i).1).filter(|v| !v.is_empty())
    }
}

/// A name that appears twice. A form of a few parameters is scanned; a larger one
/// goes through a set, so a body of thousands of tiny parameters costs linear time,
/// not quadratic.
fn repeated_name(pairs: &[(String, String)]) -> Option<&str> {
    const SCANNED: usize = 16;
    if pairs.len() <= SCANNED {
        return pairs.iter().enumerate().find_map(|(i, (name, _))| {
            pairs[..i]
                .iter()
                .any(|(n, _)| n == name)
                .then_some(name.as_str())
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    pairs
        .iter()
        .map(|(name, _)| name.as_str())
        .find(|name| !seen.insert(*name))
}

fn decode(raw: &[u8]) -> Result<String, ApiError> {
    let not_utf8 = || ApiError::BadRequest("the form is not valid UTF-8".into());
    // Most values (tokens, ids, grant types) have nothing to decode.
    if !raw.iter().any(|b| *b == b'+' || *b == b'%') {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| not_utf8());
    }
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| not_utf8())
}

/// Percent-decoding without form rules: `+` stays `+`. What RFC 6749 §2.3.1 asks of
/// credentials inside Basic (raw curl `-u id:secret` with a `+` in the secret still
/// works), and what a path segment (`alice%40mail.org`) needs. `None`: not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// The form of a request: checks the media type, ignoring parameters such as
/// `charset=UTF-8`, then parses the body.
pub(super) fn of(request: &Request<Bytes>) -> Result<Form, ApiError> {
    if !has_media_type(request, "application/x-www-form-urlencoded") {
        return Err(ApiError::BadRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    Form::parse(request.body())
}

/// True when the request's `Content-Type`, without its parameters, is `expected`.
pub(super) fn has_media_type(request: &Request<Bytes>, expected: &str) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|m| m.eq_ignore_ascii_case(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_percent_decoded_but_plus_stays() {
        assert_eq!(percent_decode("my%5Fclient").unwrap(), "my_client");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("%ff").is_none());
    }

    #[test]
    fn parses_percent_and_plus_encoding() {
        let f = Form::parse(b"grant_type=client_credentials&scope=test1+test2%20x&empty=&flag")
            .unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("scope"), Some("test1 test2 x"));
        assert_eq!(f.get("empty"), Some(""));
        assert_eq!(f.non_empty("empty"), None);
        assert_eq!(f.get("flag"), Some(""));
        assert_eq!(f.get("missing"), None);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(Form::parse(b"token=a&token=b").is_err());
        assert!(Form::parse(b"token=a&token%3D=b").is_ok());
        assert!(Form::parse(b"a=1&b=2&a%3D").is_ok());
        assert!(
            Form::parse(b"to%6Ben=a&token=b").is_err(),
            "decoded names compare"
        );
        // Past the scanned size, the set finds a repeat as well.
        let many: Vec<u8> = (0..40)
            .flat_map(|i| format!("p{i}=&").into_bytes())
            .collect();
        assert!(Form::parse(&many).is_ok());
        let repeated = [many.as_slice(), b"p7=x"].concat();
        assert!(Form::parse(&repeated).is_err());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(Form::parse(b"token=%ff%fe").is_err());
        assert!(Form::parse(b"token=\xff").is_err());
    }

    // Fuzzing of untrusted input: arbitrary bytes never panic. PROPTEST_CASES raises
    // the number of cases for a longer run (README, "Abuse resistance").
    proptest::proptest! {
        #[test]
        fn any_body_parses_or_is_refused(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            if let Ok(form) = Form::parse(&body) {
                // Every parsed name is unique.
                let mut names: Vec<_> = form.pairs.iter().map(|(n, _)| n.clone()).collect();
                names.sort();
                names.dedup();
                proptest::prop_assert_eq!(names.len(), form.pairs.len());
            }
        }
    }

    #[test]
    fn thousands_of_parameters_parse_in_linear_time() {
        let body: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("p{i}=&").into_bytes())
            .collect();
        let started = std::time::Instant::now();
        assert_eq!(Form::parse(&body).unwrap().pairs.len(), 20_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
