//! The Resources page: the tenant's resource rules in order, edited as one form, and
//! "Test a path", which says which rule decides a request and what it asks.

use super::page::{self, csrf, done_note, from_file_note, head_row, Section};
use super::Signed;
use crate::domain::ownership::ManagedBy;
use crate::http::form::Form;
use crate::http::{ApiError, Body};
use crate::service::admin::{PathTest, Resources, RuleRow};
use crate::service::Error;
use hyper::{Response, StatusCode};
use maud::{html, Markup};

/// Empty rows under the rules, to add new ones.
const BLANK_ROWS: usize = 3;
const METHODS: [&str; 8] = [
    "all", "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS",
];

/// The rules as the form sent them, in the order of their positions. A row without a
/// context is left out: that is how a rule is removed.
fn sent_rules(form: &Form) -> Vec<RuleRow> {
    let mut rows: Vec<(i64, usize, RuleRow)> = Vec::new();
    for i in 0.. {
        let Some(context) = form.get(&format!("context.{i}")) else {
            break;
        };
        let context = context.trim();
        if context.is_empty() {
            continue;
        }
        let position = form
            .get(&format!("position.{i}"))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(i64::MAX);
        let row = RuleRow {
            context: context.to_owned(),
            secured: form.get(&format!("secured.{i}")).is_some(),
            http_method: form.get(&format!("method.{i}")).unwrap_or("all").to_owned(),
            permissions: form
                .get(&format!("permissions.{i}"))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        rows.push((position, i, row));
    }
    // Stable: rules with the same position keep the order they were shown in.
    rows.sort_by_key(|(position, i, _)| (*position, *i));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

/// The rule an error names (`resources[3]`), counted from 0.
fn failed_rule(field: &str) -> Option<usize> {
    field
        .strip_prefix("resources[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

impl Signed<'_> {
    pub(super) async fn resources(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "resources", self.origin())?;
        let view = self.console.gateway.get_resources(&admin);
        let query = self.query()?;
        let editable = view.managed_by == ManagedBy::Api && self.session.may("PUT", "resources");
        let rules = html! {
            (done_note(query.get("done")))
            @if view.managed_by == ManagedBy::File { (from_file_note(self.console.tenant.domain.as_str())) }
            @if editable {
                (self.rules_form(&view.rules.resources, None))
            } @else {
                (rules_table(&view.rules.resources))
            }
        };
        let body = html! { (rules) (self.path_test(None, None, None)) };
        Ok(self.page(StatusCode::OK, "Resources", Some(Section::Resources), body))
    }

    fn rules_form(&self, rules: &[RuleRow], error: Option<(Option<usize>, &str)>) -> Markup {
        let blank = RuleRow {
            context: String::new(),
            secured: true,
            http_method: "all".into(),
            permissions: Vec::new(),
        };
        let rows = rules.iter().chain(std::iter::repeat_n(&blank, BLANK_ROWS));
        let failed = error.and_then(|(row, _)| row);
        html! {
            @if let Some((_, message)) = error { (page::message(message)) }
            form.card method="post" action={ (self.console.base) "/resources" } {
                (csrf(&self.session))
                p.muted {
                    "The first rule whose context (a regular expression for the whole path) and method match a request decides it. "
                    "To remove a rule, empty its context; to move one, change its position."
                }
                @for (i, rule) in rows.enumerate() {
                    (rule_row(i, rule, i >= rules.len(), failed == Some(i)))
                }
                div.actions { button type="submit" { "Save rules" } }
            }
        }
    }

    pub(super) async fn save_resources(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("PUT", "resources", self.origin())?;
        let form = self.form()?;
        let rules = sent_rules(&form);
        let request = Resources {
            resources: rules.clone(),
        };
        match self.console.gateway.set_resources(&admin, request).await {
            Ok(_) => Ok(self.done("resources", "The rules were saved; they apply now.")),
            Err(Error::Invalid { field, message }) => {
                let row = failed_rule(&field);
                let words = match row {
                    Some(i) => format!("Rule {}: {message}", i + 1),
                    None => message,
                };
                let body = html! {
                    (self.rules_form(&rules, Some((row, &words))))
                    (self.path_test(None, None, None))
                };
                Ok(self.page(
                    StatusCode::BAD_REQUEST,
                    "Resources",
                    Some(Section::Resources),
                    body,
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `resources/test?path=&method=`: which rule decides, on the same page.
    pub(super) async fn test_path(&self) -> Result<Response<Body>, ApiError> {
        let admin = self.session.admin("GET", "resources", self.origin())?;
        let query = self.query()?;
        let path = query.get("path").unwrap_or_default().trim();
        let method = query.get("method").unwrap_or("GET");
        let g = self.console.gateway;
        let (status, answer) = match g.test_resource_path(&admin, method, path) {
            Ok(test) => (StatusCode::OK, Ok(test)),
            Err(Error::Invalid { message, .. }) => (StatusCode::BAD_REQUEST, Err(message)),
            Err(e) => return Err(e.into()),
        };
        let view = g.get_resources(&admin);
        let body = html! {
            (self.path_test(Some(path), Some(method), Some(answer)))
            h2 { "The rules in force" }
            (rules_table(&view.rules.resources))
        };
        Ok(self.page(status, "Test a path", Some(Section::Resources), body))
    }

    fn path_test(
        &self,
        path: Option<&str>,
        method: Option<&str>,
        answer: Option<Result<PathTest, String>>,
    ) -> Markup {
        let example = format!(
            "{}/api/v1/users",
            self.console.base.trim_end_matches("/console")
        );
        let error = answer.as_ref().and_then(|a| a.as_ref().err());
        html! {
            section aria-labelledby="test-a-path" {
                h2 id="test-a-path" { "Test a path" }
                form method="get" action={ (self.console.base) "/resources/test" } {
                    label for="test-path" { "Path" }
                    @if let Some(error) = error {
                        input type="text" id="test-path" name="path" value=(path.unwrap_or_default()) required aria-invalid="true" aria-describedby="test-path-note";
                        p.field-error id="test-path-note" { (error) }
                    } @else {
                        input type="text" id="test-path" name="path" value=(path.unwrap_or_default()) required aria-describedby="test-path-note";
                        p.muted id="test-path-note" { "A whole request path, such as " code { (example) } "." }
                    }
                    label for="test-method" { "Method" }
                    select id="test-method" name="method" {
                        @for m in METHODS.iter().skip(1) {
                            option value=(m) selected[method == Some(*m)] { (m) }
                        }
                    }
                    div.actions { button type="submit" { "Test" } }
                }
                @if let Some(Ok(test)) = &answer {
                    div role="status" {
                        @match &test.rule {
                            Some((i, rule)) => {
                                p { "Rule " (i + 1) " decides: " code { (rule.context) } " (" (rule.http_method) ")." }
                                @if test.needs.is_empty() {
                                    p { "It is not secured: anyone may call this path." }
                                } @else {
                                    p { "A caller needs " @for (n, p) in test.needs.iter().enumerate() { @if n > 0 { " and " } code { (p) } } "." }
                                }
                            }
                            None => p { "No rule matches: the path is open to anyone who may reach it." },
                        }
                    }
                }
            }
        }
    }
}

fn rule_row(i: usize, rule: &RuleRow, new: bool, failed: bool) -> Markup {
    let id = |name: &str| format!("rule-{i}-{name}");
    let legend = if new {
        format!("New rule {}", i + 1)
    } else {
        format!("Rule {}", i + 1)
    };
    let position = if new {
        String::new()
    } else {
        (i + 1).to_string()
    };
    html! {
        fieldset.rule.failed[failed] {
            legend { (legend) }
            div.rule-fields {
                div {
                    label for=(id("position")) { "Position" }
                    input type="number" min="1" id=(id("position")) name={ "position." (i) } value=(position);
                }
                div.wide {
                    label for=(id("context")) { "Context" }
                    input type="text" id=(id("context")) name={ "context." (i) } value=(rule.context);
                }
                div {
                    label for=(id("method")) { "Method" }
                    select id=(id("method")) name={ "method." (i) } {
                        @for m in METHODS {
                            option value=(m) selected[rule.http_method.eq_ignore_ascii_case(m)] { (m) }
                        }
                    }
                }
                div.wide {
                    label for=(id("permissions")) { "Permissions" }
                    input type="text" id=(id("permissions")) name={ "permissions." (i) } value=(rule.permissions.join(" "));
                }
                div {
                    label.check {
                        input type="checkbox" name={ "secured." (i) } checked[rule.secured];
                        "Secured"
                    }
                }
            }
        }
    }
}

fn rules_table(rules: &[RuleRow]) -> Markup {
    html! {
        div.table tabindex="0" role="region" aria-label="Rules" { table {
            caption.muted { "The rules, in the order they are tried" }
            (head_row(&["#", "Context", "Method", "Secured", "Permissions"]))
            tbody {
                @for (i, rule) in rules.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { code { (rule.context) } }
                        td { (rule.http_method) }
                        td { @if rule.secured { "Yes" } @else { "No" } }
                        td { @for p in &rule.permissions { code { (p) } " " } }
                    }
                }
            }
        } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_come_in_the_order_of_their_positions_and_empty_rows_drop() {
        let body = "context.0=a&method.0=GET&permissions.0=%2Fpermission%2Fa+%2Fpermission%2Fb\
                    &secured.0=on&position.0=2\
                    &context.1=b&method.1=all&position.1=1\
                    &context.2=&position.2=\
                    &context.3=c&position.3=";
        let form = Form::parse(body.as_bytes()).unwrap();
        let rules = sent_rules(&form);
        let contexts: Vec<&str> = rules.iter().map(|r| r.context.as_str()).collect();
        assert_eq!(contexts, ["b", "a", "c"]);
        assert_eq!(rules[1].permissions, ["/permission/a", "/permission/b"]);
        assert!(rules[1].secured);
        assert!(!rules[0].secured);
        assert_eq!(failed_rule("resources[12]"), Some(12));
        assert_eq!(failed_rule("method"), None);
    }
}
