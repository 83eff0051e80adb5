//! HTTP probes: `/healthz` (the process is alive) and `/readyz` (the first complete state of the
//! cluster is being served), for Kubernetes liveness and readiness probes.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
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

use crate::dns::view::SharedView;
use crate::server::accept::AcceptBackoff;

pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    pub async fn bind(listen: SocketAddr, view: SharedView) -> io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, view));
        Ok(Self { local_addr, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// A client that has not sent its request head within this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve(listener: TcpListener, view: SharedView) {
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
        let view = view.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&request, &view);
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

fn respond(request: &Request<Incoming>, view: &SharedView) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if view.load().synced() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the first complete list of the cluster has not arrived\n",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz or /readyz\n",
        ),
    }
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
