//! The page and its assets, embedded in the binary: the dashboard works offline, with no CDN and no
//! build step. The chart library is uPlot from npm, vendored unchanged (`assets/vendor/*/VENDORED.md`).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");

/// (name, content type, body).
const FILES: [(&str, &str, &str); 4] = [
    ("app.js", "text/javascript; charset=utf-8", include_str!("assets/app.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("assets/app.css")),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uplot-1.6.32/uPlot.iife.min.js"),
    ),
    ("uPlot.min.css", "text/css; charset=utf-8", include_str!("assets/vendor/uplot-1.6.32/uPlot.min.css")),
];

pub async fn index() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response()
}

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type)], *body).into_response(),
        None => super::refusal(StatusCode::NOT_FOUND, "NoSuchAsset", format!("no asset {name}")),
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    #[test]
    fn the_vendored_chart_library_is_the_npm_release_unchanged() {
        let sha = |text: &str| format!("{:x}", Sha256::digest(text.as_bytes()));
        let recorded = include_str!("assets/vendor/uplot-1.6.32/VENDORED.md");
        for (name, _, body) in &FILES[2..] {
            let line = recorded.lines().find(|l| l.contains(&format!("dist/{name}"))).expect("a recorded hash");
            assert!(line.ends_with(&sha(body)), "{name} differs from the recorded npm release");
        }
    }

    #[test]
    fn the_page_loads_only_embedded_assets() {
        for reference in INDEX.split(['"', '\'']).filter(|s| s.starts_with("/assets/")) {
            let name = reference.trim_start_matches("/assets/");
            assert!(FILES.iter().any(|(file, _, _)| *file == name), "{reference} is not embedded");
        }
        assert!(!INDEX.contains("http://") && !INDEX.contains("https://"), "no CDN");
    }
}
