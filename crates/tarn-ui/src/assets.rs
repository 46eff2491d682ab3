//! The static files every page loads, embedded in the binary and served at
//! `/static/{hash}/{name}`: the hash of the bytes is in the URL, so a file is
//! cached for good and a new build's file has a new URL.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset { name: "app.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("../assets/app.css") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("../assets/app.js") },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/htmx/htmx.min.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// FNV-1a of each asset's bytes, in `ASSETS` order.
static HASHES: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let hash = a
                .bytes
                .iter()
                .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
            format!("{hash:016x}")
        })
        .collect()
});

/// The URL of the embedded file `name` (one of the names above).
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("/static/{}/{}", HASHES[i], name),
        None => format!("/static/missing/{name}"),
    }
}

/// `GET /static/{hash}/{name}`, served without authentication (nothing in
/// these files is the workspace's).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/static/{hash}/{name}", get(serve))
}

async fn serve(Path((hash, name)): Path<(String, String)>) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // An old page asking for an old hash gets today's bytes, not for keeps.
    let cache = match HASHES[i] == hash {
        true => "public, max-age=31536000, immutable",
        false => "no-cache",
    };
    let asset = &ASSETS[i];
    ([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, cache)], asset.bytes).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_carry_the_hash_of_the_bytes() {
        let url = super::url("htmx.min.js");
        assert!(url.starts_with("/static/") && url.ends_with("/htmx.min.js"), "{url}");
        assert_eq!(url.len(), "/static/".len() + 16 + "/htmx.min.js".len());
        assert_ne!(super::url("app.css"), super::url("app.js"));
    }
}
