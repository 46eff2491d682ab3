//! The page shell: head with the static files, the side navigation (one
//! entry per area of the workspace, at the URL paths Databricks uses), the
//! signed-in user, breadcrumbs and the page body.

use maud::{DOCTYPE, Markup, html};

use crate::assets;

/// The areas of the workspace, in the order the navigation lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Compute,
    Workflows,
    Pipelines,
    Experiments,
    Models,
    Serving,
    Catalog,
    Sql,
    Monitors,
    Costs,
}

/// (section, label, path) of each navigation entry.
const NAV: &[(Section, &str, &str)] = &[
    (Section::Home, "Home", "/"),
    (Section::Compute, "Compute", "/compute"),
    (Section::Workflows, "Workflows", "/jobs"),
    (Section::Pipelines, "Pipelines", "/pipelines"),
    (Section::Experiments, "Experiments", "/ml/experiments"),
    (Section::Models, "Models", "/ml/models"),
    (Section::Serving, "Serving", "/ml/endpoints"),
    (Section::Catalog, "Catalog", "/explore/data"),
    (Section::Sql, "SQL editor", "/sql/editor"),
    (Section::Monitors, "Monitors", "/monitors"),
    (Section::Costs, "Costs", "/costs"),
];

/// Who is looking, shown in the top bar.
pub struct Viewer<'a> {
    pub user_name: &'a str,
    /// Whether the user signed in with a token (and so can sign out).
    pub signed_in: bool,
}

/// A whole page: `title` in the tab and as the heading, `crumbs` (label,
/// link) above it, `body` below.
pub fn page(title: &str, section: Section, viewer: &Viewer, crumbs: &[(&str, &str)], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tarn" }
                link rel="stylesheet" href=(assets::url("app.css"));
                link rel="stylesheet" href=(assets::url("uPlot.min.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("uPlot.iife.min.js")) defer {}
                script src=(assets::url("app.js")) defer {}
            }
            body {
                header.topbar {
                    a.brand href="/" { "tarn" }
                    span.spacer {}
                    span.user { (viewer.user_name) }
                    @if viewer.signed_in {
                        form.signout method="post" action="/logout" { button type="submit" { "Sign out" } }
                    }
                }
                div.frame {
                    nav.sidenav {
                        @for (s, label, path) in NAV {
                            a href=(path) class=[(*s == section).then_some("active")] { (label) }
                        }
                    }
                    main {
                        @if !crumbs.is_empty() {
                            div.crumbs {
                                @for (label, link) in crumbs {
                                    @if link.is_empty() { span { (label) } } @else { a href=(link) { (label) } }
                                    span.sep { "/" }
                                }
                            }
                        }
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
    }
}

/// A page of its own outside the shell (the sign-in form).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tarn" }
                link rel="stylesheet" href=(assets::url("app.css"));
            }
            body.bare { main.narrow { h1 { (title) } (body) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_section_is_marked_and_crumbs_link() {
        let viewer = Viewer { user_name: "ada@example.com", signed_in: true };
        let html =
            page("Job 7", Section::Workflows, &viewer, &[("Workflows", "/jobs")], html! { p { "x" } }).into_string();
        assert!(html.contains(r#"<a href="/jobs" class="active">Workflows</a>"#), "{html}");
        assert!(html.contains("ada@example.com") && html.contains("Sign out"));
        assert!(html.contains("<title>Job 7 · tarn</title>"));
    }
}
