//! Reading a server-rendered page as a browser would: the value of one of its form
//! fields. Shared by the tests and by the benchmark, which signs in the same way
//! (`benches/gateway/console.rs` includes this file).

/// The value of the field `name` in `html` (hidden or text), unescaped.
#[allow(
    unreachable_pub,
    reason = "the benchmark includes this file as a private module"
)]
pub fn field_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name}"))
        + marker.len();
    let end = html[start..].find('"').expect("a closing quote") + start;
    html[start..end].replace("&amp;", "&")
}
