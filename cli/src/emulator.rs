//! Whether a local stack's LocalStack is Nexus's own, and patched: Nexus's launcher serves
//! `GET /_localstack/nexus` with both (localstack/patches/localstack_main.py). A LocalStack that is not
//! (one started with Docker, or another project's on the same port) runs without the patches: slower, and
//! with the SendTask race the patches fix (docs/local-environment.md). `nexus top` and `nexus dashboard`
//! say so on their first line.

use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// The launcher's route (`MARKER_PATH` in localstack_main.py).
const MARKER_PATH: &str = "/_localstack/nexus";
/// The marker is a few hundred bytes; nothing longer is read.
const MARKER_LIMIT: usize = 4096;
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the launcher's route says (its JSON).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Marker {
    launcher: String,
    patched: bool,
    localstack_version: String,
    validated_version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Emulator {
    /// Started by Nexus's launcher (`make up`).
    pub nexus_launcher: bool,
    pub patched: bool,
    /// What to tell the user, when anything.
    pub warning: Option<String>,
}

/// Asks the LocalStack at `endpoint` (a local stack's; never called for AWS).
pub async fn check(endpoint: &str) -> Emulator {
    judge(endpoint, ask(endpoint).await)
}

async fn ask(endpoint: &str) -> Option<(u16, Bytes)> {
    let uri: axum::http::Uri = format!("{}{MARKER_PATH}", endpoint.trim_end_matches('/')).parse().ok()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(ASK_TIMEOUT, client.get(uri)).await.ok()?.ok()?;
    let status = response.status().as_u16();
    let body = http_body_util::Limited::new(response.into_body(), MARKER_LIMIT);
    let bytes = tokio::time::timeout(ASK_TIMEOUT, body.collect()).await.ok()?.ok()?.to_bytes();
    Some((status, bytes))
}

/// The verdict on the route's answer (None: no answer at all).
fn judge(endpoint: &str, answer: Option<(u16, Bytes)>) -> Emulator {
    let marker = answer
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| serde_json::from_slice::<Marker>(&body).ok())
        .filter(|m| m.launcher == "nexus");
    match marker {
        Some(m) if m.patched => Emulator { nexus_launcher: true, patched: true, warning: None },
        Some(m) => Emulator {
            nexus_launcher: true,
            patched: false,
            warning: Some(format!(
                "LocalStack {} runs UNPATCHED (its patches were validated on {} only): slower, and with the \
                 SendTask race they fix",
                m.localstack_version, m.validated_version
            )),
        },
        None => Emulator {
            nexus_launcher: false,
            patched: false,
            warning: Some(format!(
                "the LocalStack at {endpoint} is not Nexus's own (no {MARKER_PATH}): it runs without Nexus's \
                 patches, slower and with the SendTask race they fix; `make down && make up` starts Nexus's"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Option<(u16, Bytes)> {
        Some((status, Bytes::from(body.to_owned())))
    }

    #[test]
    fn only_nexus_s_patched_launcher_goes_without_a_warning() {
        let ok = r#"{"launcher":"nexus","patched":true,"localstackVersion":"2026.3.0","validatedVersion":"2026.3.0"}"#;
        assert_eq!(judge("e", answer(200, ok)), Emulator { nexus_launcher: true, patched: true, warning: None });

        let unpatched = ok.replace("\"patched\":true", "\"patched\":false").replace("2026.3.0\",\"v", "2026.4.0\",\"v");
        let verdict = judge("e", answer(200, &unpatched));
        assert!(verdict.nexus_launcher && !verdict.patched);
        assert!(verdict.warning.as_deref().is_some_and(|w| w.contains("2026.4.0 runs UNPATCHED")), "{verdict:?}");

        // LocalStack's own 404 for a route it does not have, another server's page, or no answer at all.
        for other in [answer(404, "{}"), answer(200, "<html>"), answer(200, &ok.replace("nexus", "x")), None] {
            let verdict = judge("http://127.0.0.1:4566", other);
            assert!(!verdict.nexus_launcher, "{verdict:?}");
            assert!(verdict.warning.as_deref().is_some_and(|w| w.contains("is not Nexus's own")), "{verdict:?}");
        }
    }
}
