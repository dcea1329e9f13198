//! The frame every console page shares, and the small pieces pages are made of. maud
//! escapes every value it is given; nothing here writes raw HTML.

use crate::service::console::ConsoleSession;
use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Rows on one page of a list.
pub(super) const PAGE_SIZE: i64 = 50;

/// The sections the navigation links to, each shown only to whom may open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Users,
    Roles,
    Clients,
    Resources,
    Tokens,
    Audit,
    Keys,
    Settings,
    Tenants,
}

impl Section {
    const ALL: [Section; 9] = [
        Section::Users,
        Section::Roles,
        Section::Clients,
        Section::Resources,
        Section::Tokens,
        Section::Audit,
        Section::Keys,
        Section::Settings,
        Section::Tenants,
    ];

    fn label(self) -> &'static str {
        match self {
            Section::Users => "Users",
            Section::Roles => "Roles",
            Section::Clients => "Clients",
            Section::Resources => "Resources",
            Section::Tokens => "Tokens",
            Section::Audit => "Audit",
            Section::Keys => "Keys",
            Section::Settings => "Settings",
            Section::Tenants => "Tenants",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Users => "users",
            Section::Roles => "roles",
            Section::Clients => "clients",
            Section::Resources => "resources",
            Section::Tokens => "tokens",
            Section::Audit => "audit",
            Section::Keys => "keys",
            Section::Settings => "settings",
            Section::Tenants => "tenants",
        }
    }

    /// The admin API call that opening the section mirrors.
    fn mirrors(self) -> (&'static str, &'static str) {
        match self {
            Section::Tokens => ("POST", "tokens/lookup"),
            other => ("GET", other.path()),
        }
    }

    fn visible_to(self, session: &ConsoleSession) -> bool {
        let (method, rest) = self.mirrors();
        session.may(method, rest)
    }
}

/// What the frame of a signed-in page shows.
pub(super) struct Frame<'a> {
    pub base: &'a str,
    pub tenant: &'a str,
    pub session: &'a ConsoleSession,
    pub current: Option<Section>,
}

fn head(title: &str, base: Option<&str>) -> Markup {
    let stylesheet = match base {
        Some(base) => format!("{base}/style.css"),
        None => "style.css".to_owned(),
    };
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Portcullis console" }
            link rel="stylesheet" href=(stylesheet);
        }
    }
}

/// A page of a signed-in session: who is signed in where, the navigation, `body`.
pub(super) fn signed_in(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, Some(frame.base)))
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    p { a href={ (frame.base) "/" } { "Portcullis console" } }
                    p.who { "Signed in as " strong { (frame.session.signed_in_as()) } " · tenant " strong { (frame.tenant) } }
                    form method="post" action={ (frame.base) "/sign-out" } {
                        (csrf(frame.session))
                        button type="submit" { "Sign out" }
                    }
                }
                nav aria-label="Console" {
                    ul {
                        @for section in Section::ALL.into_iter().filter(|s| s.visible_to(frame.session)) {
                            li {
                                @if frame.current == Some(section) {
                                    a href={ (frame.base) "/" (section.path()) } aria-current="page" { (section.label()) }
                                } @else {
                                    a href={ (frame.base) "/" (section.path()) } { (section.label()) }
                                }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside any session (signed out, a refused callback).
pub(super) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body {
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden synchronizer token every form of the session carries.
pub(super) fn csrf(session: &ConsoleSession) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf()); }
}

/// What the last change did, as a status message screen readers announce.
pub(super) fn done_note(note: Option<&str>) -> Markup {
    html! {
        @if let Some(note) = note {
            p.notice role="status" { (note) }
        }
    }
}

pub(super) fn message(words: &str) -> Markup {
    html! { p.error role="alert" { (words) } }
}

pub(super) fn message_with_sign_in(base: &str, words: &str) -> Markup {
    html! {
        p { (words) }
        p { a href={ (base) "/" } { "Sign in to the console" } }
    }
}

pub(super) fn signed_out(base: &str) -> Markup {
    html! {
        p role="status" { "You have signed out of the console." }
        p { a href={ (base) "/" } { "Sign in again" } }
    }
}

pub(super) fn home(base: &str, session: &ConsoleSession) -> Markup {
    html! {
        p { "Choose what to manage." }
        ul {
            @for section in Section::ALL.into_iter().filter(|s| s.visible_to(session)) {
                li { a href={ (base) "/" (section.path()) } { (section.label()) } }
            }
        }
        @if !Section::ALL.iter().any(|s| s.visible_to(session)) {
            p { "Your roles give you no part of the console. An administrator of this tenant can give you one." }
        }
    }
}

/// A required field with its label, and its error when the last try failed.
pub(super) fn field(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
) -> Markup {
    input(html! { (label) }, name, kind, value, error, true)
}

/// A field that may be left empty, saying so in its label.
pub(super) fn optional_field(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
) -> Markup {
    let label = html! { (label) " " span.muted { "(optional)" } };
    input(label, name, kind, value, error, false)
}

/// A labelled input (`field-{name}`): marked, with the error beside it, when the last
/// try failed.
fn input(
    label: Markup,
    name: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
    required: bool,
) -> Markup {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    html! {
        label for=(id) { (label) }
        @if let Some(error) = error {
            input type=(kind) id=(id) name=(name) value=(value) aria-invalid="true" aria-describedby=(error_id) required[required];
            p.field-error id=(error_id) { (error) }
        } @else {
            input type=(kind) id=(id) name=(name) value=(value) required[required];
        }
    }
}

/// A text area with its label: one value per line.
pub(super) fn lines_field(
    label: &str,
    name: &str,
    value: &str,
    hint: &str,
    error: Option<&str>,
) -> Markup {
    let id = format!("field-{name}");
    let note_id = format!("{id}-note");
    html! {
        label for=(id) { (label) }
        @if let Some(error) = error {
            textarea id=(id) name=(name) aria-invalid="true" aria-describedby=(note_id) { (value) }
            p.field-error id=(note_id) { (error) }
        } @else {
            textarea id=(id) name=(name) aria-describedby=(note_id) { (value) }
            p.muted id=(note_id) { (hint) }
        }
    }
}

/// A checkbox with its label beside it.
pub(super) fn check_box(label: &str, name: &str, checked: bool) -> Markup {
    html! {
        label.check {
            input type="checkbox" name=(name) checked[checked];
            (label)
        }
    }
}

/// The non-empty lines of a text area, trimmed.
pub(super) fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a name keeps as it is in a path segment: letters, digits and RFC 3986's other
/// unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A name as a path segment.
pub(super) fn segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// The search field of a list, its hint saying what it matches.
pub(super) fn search_field(q: Option<&str>, hint: &str) -> Markup {
    html! {
        div {
            label for="search" { "Search" }
            input type="search" id="search" name="q" value=(q.unwrap_or_default()) aria-describedby="search-hint";
            p.muted id="search-hint" { (hint) }
        }
    }
}

/// The search form of a list at `action`.
pub(super) fn search_form(action: &str, q: Option<&str>, hint: &str) -> Markup {
    html! {
        form.filters method="get" action=(action) role="search" {
            (search_field(q, hint))
            div { button type="submit" { "Search" } }
        }
    }
}

/// The link to a list's next page: `path` with the same filters and the cursor.
pub(super) fn next_link(path: &str, filters: &[(&str, &str)], next: Option<&str>) -> Markup {
    let href = next.map(|next| {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in filters {
            query.append_pair(name, value);
        }
        query.append_pair("after", next);
        format!("{path}?{}", query.finish())
    });
    html! {
        @if let Some(href) = href {
            p { a href=(href) rel="next" { "Next" } }
        }
    }
}

/// Says that an object is declared by the tenant's file, and so only shown here.
pub(super) fn from_file_note(tenant: &str) -> Markup {
    html! {
        p.notice {
            "Declared in the tenant file " code { "tenants/" (tenant) ".toml" }
            ": shown here read-only. Change it in that file."
        }
    }
}

/// Seconds since 1970 as people read it (UTC), in the log's calendar.
pub(super) fn time(seconds: i64) -> String {
    let date_and_time = crate::logging::date_and_time(u64::try_from(seconds).unwrap_or(0));
    format!("{} UTC", date_and_time.replacen('T', " ", 1))
}

/// The header row of a table, one column heading per label.
pub(super) fn head_row(labels: &[&str]) -> Markup {
    html! {
        thead { tr { @for label in labels { th scope="col" { (label) } } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(time(1_796_515_199), "2026-12-05 23:59:59 UTC");
    }
}
