//! `GET /explain?name=NAME&type=TYPE`: what a name gets and why, as JSON — the report
//! `headless-dns explain` prints ([`crate::dns::explain::report`]).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

use crate::dns;
use crate::dns::clusters::Served;

/// `/explain?name=NAME&type=TYPE` (type `A` if absent): the report `headless-dns explain`
/// prints, as JSON; a bad question is a 400 with `{"error": ...}`.
pub(crate) fn respond(query: &str, clusters: &[Served]) -> Response<Full<Bytes>> {
    let mut name = None;
    let mut qtype = String::from("A");
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "name" => name = Some(percent_decoded(value)),
            "type" => qtype = percent_decoded(value),
            _ => {}
        }
    }
    let error = |error: String| {
        let body = serde_json::json!({ "error": error });
        (StatusCode::BAD_REQUEST, format!("{body:#}"))
    };
    let (status, body) = match name
        .as_deref()
        .map(|name| dns::explain::parse_question(name, &qtype))
    {
        None => error("give the name: /explain?name=NAME&type=TYPE".into()),
        Some(Err(message)) => error(message),
        Some(Ok((name, qtype))) => match dns::clusters::report(clusters, &name, qtype) {
            // The report's own field order: the answer first, then why.
            Some(report) => (
                StatusCode::OK,
                serde_json::to_string_pretty(&report).unwrap_or_default(),
            ),
            None => error("no cluster is served".into()),
        },
    };
    let mut response = Response::new(Full::new(Bytes::from(body + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// A query-string value with `+` and `%XX` decoded; bytes that are not UTF-8 are replaced.
fn percent_decoded(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = || {
            let digits = std::str::from_utf8(bytes.get(at + 1..at + 3)?).ok()?;
            u8::from_str_radix(digits, 16).ok()
        };
        match bytes[at] {
            b'+' => decoded.push(b' '),
            b'%' if hex().is_some() => {
                decoded.extend(hex());
                at += 2;
            }
            other => decoded.push(other),
        }
        at += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}
