//! The look of tarn's web pages, with no knowledge of the domain: the page
//! shell and navigation, small components (state badges, times, pagers,
//! action buttons, live regions), graphs laid out here and drawn as SVG
//! (task and dataset DAGs, Gantt timelines), charts handed to the vendored
//! uPlot, and the embedded static files with their immutable URLs.
//!
//! Pages themselves (what a job or an experiment shows) are built in
//! `tarn-api`'s `ui` module from these pieces; everything is HTML rendered on
//! the server with maud, updated in place by the vendored htmx. No Node
//! toolchain is involved: the two vendored files are copied from npm
//! packages with their licences beside them (`assets/vendor/README.md`).

pub mod assets;
pub mod chart;
pub mod components;
pub mod dag;
pub mod gantt;
pub mod layout;

pub use maud::{DOCTYPE, Markup, PreEscaped, html};
