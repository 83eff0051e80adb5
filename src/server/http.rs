//! HTTP: the probes `/healthz` (the process is alive) and `/readyz` (the first complete state of
//! the cluster is being served, and the server is not shutting down), for Kubernetes liveness
//! and readiness probes; `/metrics` for Prometheus; and `/explain?name=&type=`, what a name gets
//! and why, as JSON.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::debug;

use crate::dns;
use crate::dns::rules::Zone;
use crate::dns::view::SharedView;
use crate::server::accept::AcceptBackoff;
use crate::server::metrics::Scrape;

pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

/// The HTTP listener, bound but not yet serving (see [`crate::server::DnsSockets`]).
pub struct HttpListener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl HttpListener {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn serve(self, view: SharedView, zone: Arc<Zone>, scrape: Scrape) -> HttpServer {
        let stopping = Arc::new(AtomicBool::new(false));
        let probes = Probes {
            view,
            zone,
            stopping: stopping.clone(),
            scrape: Arc::new(scrape),
        };
        HttpServer {
            local_addr: self.local_addr,
            task: tokio::spawn(serve(self.listener, probes)),
            stopping,
        }
    }
}

impl HttpServer {
    pub async fn bind(listen: SocketAddr) -> io::Result<HttpListener> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        Ok(HttpListener {
            listener,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// From now on `/readyz` answers 503, so that load balancers and Services stop sending
    /// queries here while DNS still answers the ones already on their way.
    pub fn stop_being_ready(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// A client that has not sent its request head within this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the probes look at.
#[derive(Clone)]
struct Probes {
    view: SharedView,
    zone: Arc<Zone>,
    stopping: Arc<AtomicBool>,
    scrape: Arc<Scrape>,
}

async fn serve(listener: TcpListener, probes: Probes) {
    let mut backoff = AcceptBackoff::new("HTTP");
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff.accepted();
                stream
            }
            Err(error) => {
                tokio::time::sleep(backoff.failed(&error).0).await;
                continue;
            }
        };
        let probes = probes.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &probes);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
}

fn respond(request: &Request<Incoming>, probes: &Probes) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if probes.stopping.load(Ordering::Relaxed) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down (DNS answers until the lameduck period ends)\n",
        ),
        "/readyz" if probes.view.load().synced() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first complete list of the cluster has not arrived\n",
        ),
        "/metrics" => {
            let mut response = Response::new(Full::new(Bytes::from(probes.scrape.render())));
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                // What the body is: Prometheus would parse a body announced as OpenMetrics by
                // that format's rules, and fail on it.
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        // The reasons name pods that are not Ready; `--explain off` keeps them from everyone.
        "/explain" if !probes.zone.explain => text(
            StatusCode::NOT_FOUND,
            "not found: explanations are turned off (--explain off)\n",
        ),
        "/explain" => explain(request.uri().query().unwrap_or(""), probes),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz, /metrics or /explain?name=NAME&type=TYPE\n",
        ),
    }
}

/// `/explain?name=NAME&type=TYPE` (type `A` if absent): the report `headless-dns explain`
/// prints, as JSON; a bad question is a 400 with `{"error": ...}`.
fn explain(query: &str, probes: &Probes) -> Response<Full<Bytes>> {
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
        Some(Ok((name, qtype))) => {
            let report = dns::explain::report(&probes.view.load(), &probes.zone, &name, qtype);
            // The report's own field order: the answer first, then why.
            let body = serde_json::to_string_pretty(&report).unwrap_or_default();
            (StatusCode::OK, body)
        }
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

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
