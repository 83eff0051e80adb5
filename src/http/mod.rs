//! HTTP, the stage over all the others: the probes `/healthz` (the process is alive) and
//! `/readyz` (the first complete state of the cluster — of each, with several — is being
//! served, and the server is not shutting down), for Kubernetes liveness and readiness probes; `/metrics` for Prometheus
//! ([`metrics`]); and `/explain?name=&type=`, what a name gets and why, as JSON ([`explain`]).

mod explain;
pub(crate) mod metrics;

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

use crate::dns::clusters::Served;
use crate::dns::zone::Apex;
use crate::http::metrics::Scrape;
use crate::server::accept::AcceptBackoff;

pub(crate) struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
    stopping: Arc<AtomicBool>,
}

/// The HTTP listener, bound but not yet serving (see [`crate::server::DnsSockets`]).
pub(crate) struct HttpListener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl HttpListener {
    /// Serves the probes of `clusters` (at least one).
    pub(crate) fn serve(self, clusters: Arc<[Served]>, scrape: Scrape) -> HttpServer {
        let stopping = Arc::new(AtomicBool::new(false));
        let probes = Probes {
            clusters,
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
    pub(crate) async fn bind(listen: SocketAddr) -> io::Result<HttpListener> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        Ok(HttpListener {
            listener,
            local_addr,
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// From now on `/readyz` answers 503, so that load balancers and Services stop sending
    /// queries here while DNS still answers the ones already on their way.
    pub(crate) fn stop_being_ready(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    pub(crate) fn shutdown(self) {
        self.task.abort();
    }
}

/// A client that has not sent its request head within this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What the probes look at.
#[derive(Clone)]
struct Probes {
    clusters: Arc<[Served]>,
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
        "/readyz" => readiness(&probes.clusters),
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
        "/explain" if !probes.clusters.iter().all(|c| c.zone.explain) => text(
            StatusCode::NOT_FOUND,
            "not found: explanations are turned off (--explain off)\n",
        ),
        "/explain" => explain::respond(request.uri().query().unwrap_or(""), &probes.clusters),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz, /metrics or /explain?name=NAME&type=TYPE\n",
        ),
    }
}

/// Ready once every cluster's first complete state is served: each then keeps answering from
/// its last state through an outage of its source, which readiness does not undo.
fn readiness(clusters: &[Served]) -> Response<Full<Bytes>> {
    // The clusterset zone of several clusters is complete when they are.
    let waiting: Vec<&str> = clusters
        .iter()
        .filter(|c| c.answers == Apex::Zone && !c.view.load().synced())
        .map(|c| c.name.as_deref().unwrap_or(""))
        .collect();
    match &waiting[..] {
        [] => text(StatusCode::OK, "ready\n"),
        [""] => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first complete list of the cluster has not arrived\n",
        ),
        names => text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the first complete list of cluster {} has not arrived\n",
                names.join(", ")
            ),
        ),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
