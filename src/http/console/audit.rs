//! The Audit page: the tenant's log, newest first, filtered and paged, and the same
//! filtered events as a CSV file.

use super::page::{head_row, next_link, time, Section, PAGE_SIZE};
use super::Signed;
use crate::domain::audit::AuditAction;
use crate::http::form::Form;
use crate::http::{ApiError, Body};
use crate::logging::start_of_day;
use crate::service::admin::{AuditFilter, AuditView, ListRequest, MAX_PAGE};
use crate::service::Error;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use maud::{html, Markup};

/// The most events one CSV file holds: a larger export is a job for the API's pages.
const MAX_EXPORT: usize = 100_000;
const FILTERS: [&str; 5] = ["action", "actor", "target", "since", "until"];

/// The filter a query asks for; `since` and `until` are days (UTC), both included.
fn audit_filter(query: &Form) -> Result<AuditFilter, (&'static str, &'static str)> {
    let day = |name: &'static str| match query.non_empty(name) {
        None => Ok(None),
        Some(text) => start_of_day(text)
            .and_then(|s| i64::try_from(s).ok())
            .map(Some)
            .ok_or((name, "is not a day written YYYY-MM-DD")),
    };
    let until = day("until")?.map(|start| start + 86_399);
    Ok(AuditFilter {
        before: None,
        action: query.non_empty("action").map(str::to_owned),
        actor: query.non_empty("actor").map(str::to_owned),
        target: query.non_empty("target").map(str::to_owned),
        since: day("since")?,
        until,
    })
}

/// One CSV cell: quoted, its quotes doubled, and a leading `=`, `+`, `-`, `@`, tab or
/// carriage return defused so that a spreadsheet never reads it as a formula.
fn csv_cell(value: &str) -> String {
    let defused = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    format!("\"{}\"", defused.replace('"', "\"\""))
}

fn csv_row(event: &AuditView) -> String {
    let at = crate::logging::date_and_time(u64::try_from(event.at).unwrap_or(0));
    let cells = [
        event.id.to_string(),
        format!("{at}Z"),
        event.actor.clone(),
        event.action.clone(),
        event.target.clone(),
        event.client_address.clone(),
        event.detail.clone().unwrap_or_default(),
        event.via.clone().unwrap_or_default(),
    ];
    let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    format!("{}\r\n", cells.join(","))
}

impl Signed<'_> {
    pub(super) async fn audit(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "audit", self.origin())?;
        let query = self.query()?;
        let base = &self.console.base;
        let kept: Vec<(&str, &str)> = FILTERS
            .iter()
            .filter_map(|name| query.non_empty(name).map(|v| (*name, v)))
            .collect();
        let (status, events, problem) = match audit_filter(&query) {
            Err((field, message)) => (
                StatusCode::BAD_REQUEST,
                None,
                Some((field, format!("{field} {message}"))),
            ),
            Ok(filter) => {
                let request = ListRequest {
                    limit: Some(PAGE_SIZE),
                    after: query.non_empty("after").map(str::to_owned),
                    q: None,
                };
                match self
                    .console
                    .gateway
                    .audit_log(&admin, &request, filter)
                    .await
                {
                    Ok(page) => (StatusCode::OK, Some(page), None),
                    Err(Error::Invalid { field, message }) => {
                        let field = if field == "since" { "since" } else { "after" };
                        (
                            StatusCode::BAD_REQUEST,
                            None,
                            Some((field, format!("{field} {message}"))),
                        )
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let export = {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (name, value) in &kept {
                q.append_pair(name, value);
            }
            format!("{base}/audit/export?{}", q.finish())
        };
        let problem_of = |name: &str| {
            problem
                .as_ref()
                .filter(|(f, _)| *f == name)
                .map(|(_, m)| m.as_str())
        };
        let body = html! {
            @if let Some((_, message)) = &problem { (super::page::message(message)) }
            form.filters method="get" action={ (base) "/audit" } role="search" {
                div {
                    label for="filter-action" { "Action" }
                    select id="filter-action" name="action" {
                        option value="" { "Any" }
                        @for action in AuditAction::ALL {
                            option value=(action.as_str()) selected[query.get("action") == Some(action.as_str())] { (action.as_str()) }
                        }
                    }
                }
                (filter_field("Actor", "actor", "text", query.get("actor"), None))
                (filter_field("Target", "target", "text", query.get("target"), None))
                (filter_field("Since", "since", "date", query.get("since"), problem_of("since")))
                (filter_field("Until", "until", "date", query.get("until"), problem_of("until")))
                div { button type="submit" { "Filter" } }
            }
            p { a href=(export) download { "Download these events as CSV" } " " span.muted { "(at most 100,000, newest first)" } }
            @if let Some(events) = &events {
                div.table tabindex="0" role="region" aria-label="Events" { table {
                    caption.muted { "Events, newest first (times in UTC)" }
                    (head_row(&["When", "Actor", "Action", "Target", "From", "Detail"]))
                    tbody {
                        @for event in &events.items {
                            tr {
                                td { (time(event.at)) }
                                td { (event.actor) }
                                td { (event.action) @if event.via.is_some() { " " span.muted { "(console)" } } }
                                td { (event.target) }
                                td { (event.client_address) }
                                td { (event.detail.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                } }
                @if events.items.is_empty() { p { "No event matches." } }
                (next_link(&format!("{base}/audit"), &kept, events.next.as_deref()))
            }
        };
        Ok(self.page(status, "Audit", Some(Section::Audit), body))
    }

    /// `audit/export?…`: the filtered events as `text/csv`, newest first.
    pub(super) async fn export_audit(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "audit", self.origin())?;
        let query = self.query()?;
        let filter = audit_filter(&query)
            .map_err(|(field, message)| ApiError::BadRequest(format!("{field} {message}")))?;
        let mut csv = String::from(
            "\"id\",\"at\",\"actor\",\"action\",\"target\",\"from\",\"detail\",\"via\"\r\n",
        );
        let mut after = None;
        let mut rows = 0;
        while rows < MAX_EXPORT {
            let request = ListRequest {
                limit: Some(MAX_PAGE),
                after: after.take(),
                q: None,
            };
            let page = self
                .console
                .gateway
                .audit_log(&admin, &request, filter.clone())
                .await?;
            for event in page.items.iter().take(MAX_EXPORT - rows) {
                csv.push_str(&csv_row(event));
                rows += 1;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let mut response = Response::new(Full::new(Bytes::from(csv)));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        let file = format!(
            "attachment; filename=\"audit-{}.csv\"",
            self.console.tenant.domain.as_str()
        );
        if let Ok(value) = HeaderValue::from_str(&file) {
            headers.insert(CONTENT_DISPOSITION, value);
        }
        super::secure_headers(&mut response);
        Ok(response)
    }
}

fn filter_field(
    label: &str,
    name: &str,
    kind: &str,
    value: Option<&str>,
    problem: Option<&str>,
) -> Markup {
    let id = format!("filter-{name}");
    html! {
        div {
            label for=(id) { (label) }
            @if let Some(problem) = problem {
                input type=(kind) id=(id) name=(name) value=(value.unwrap_or_default()) aria-invalid="true" aria-describedby={ (id) "-error" };
                p.field-error id={ (id) "-error" } { (problem) }
            } @else {
                input type=(kind) id=(id) name=(name) value=(value.unwrap_or_default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("alice"), "\"alice\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
        assert_eq!(csv_cell("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(csv_cell("-1+2"), "\"'-1+2\"");
        assert_eq!(csv_cell("a,b\r\nc"), "\"a,b\r\nc\"");
    }

    #[test]
    fn days_filter_from_midnight_to_the_last_second() {
        let form = Form::parse(b"since=2026-12-01&until=2026-12-05&actor=bob").unwrap();
        let filter = audit_filter(&form).unwrap();
        assert_eq!(filter.since, Some(1_796_083_200));
        assert_eq!(filter.until, Some(1_796_428_800 + 86_399));
        assert_eq!(filter.actor.as_deref(), Some("bob"));
        let bad = Form::parse(b"since=yesterday").unwrap();
        assert_eq!(audit_filter(&bad).unwrap_err().0, "since");
    }
}
