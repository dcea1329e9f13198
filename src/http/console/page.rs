//! The frame every console page shares, and the small pieces pages are made of. maud
//! escapes every value it is given; nothing here writes raw HTML.

use crate::service::console::ConsoleSession;
use maud::{html, Markup, DOCTYPE};

/// The sections the navigation links to, each shown only to whom may open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Users,
    Tokens,
}

impl Section {
    const ALL: [Section; 2] = [Section::Users, Section::Tokens];

    fn label(self) -> &'static str {
        match self {
            Section::Users => "Users",
            Section::Tokens => "Tokens",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Section::Users => "users",
            Section::Tokens => "tokens",
        }
    }

    /// The admin API call that opening the section mirrors.
    fn mirrors(self) -> (&'static str, &'static str) {
        match self {
            Section::Users => ("GET", "users"),
            Section::Tokens => ("POST", "tokens/lookup"),
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

/// A text field with its label, and its error when the last try failed.
pub(super) fn field(
    label: &str,
    name: &str,
    kind: &str,
    value: &str,
    error: Option<&str>,
) -> Markup {
    let id = format!("field-{name}");
    let error_id = format!("{id}-error");
    html! {
        label for=(id) { (label) }
        @if let Some(error) = error {
            input type=(kind) id=(id) name=(name) value=(value) aria-invalid="true" aria-describedby=(error_id) required;
            p.field-error id=(error_id) { (error) }
        } @else {
            input type=(kind) id=(id) name=(name) value=(value) required;
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
