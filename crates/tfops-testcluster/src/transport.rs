//! In-memory HTTP transport for [`crate::TestCluster::client_in_memory`]: each request is real
//! HTTP/1.1 (hyper client ↔ hyper server running the same router) over a `tokio::io::duplex`
//! pipe instead of a loopback socket. Wake-ups then stay inside the runtime, so a paused test
//! clock cannot auto-advance while response bytes are in flight (see the ignored
//! `known_issue_paused_time_first_event_of_a_resumed_watch` test).

use axum::Router;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::task::{Context, Poll};
use tower::ServiceExt as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower service sending each request over a fresh in-memory HTTP/1.1 connection.
#[derive(Clone)]
pub(crate) struct InMemory {
    pub app: Router,
    pub bearer: Option<HeaderValue>,
}

impl tower::Service<Request<kube::client::Body>> for InMemory {
    type Response = Response<Incoming>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<kube::client::Body>) -> Self::Future {
        if let Some(b) = &self.bearer {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, b.clone());
        }
        if !req.headers().contains_key(http::header::HOST) {
            req.headers_mut().insert(
                http::header::HOST,
                HeaderValue::from_static("tfops-testcluster"),
            );
        }
        let app = self.app.clone();
        Box::pin(async move {
            let (client_io, server_io) = tokio::io::duplex(256 * 1024);
            let svc = hyper_util::service::TowerToHyperService::new(
                app.map_request(|r: Request<Incoming>| r.map(axum::body::Body::new)),
            );
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(server_io), svc)
                    .await;
            });
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(client_io)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let resp = sender.send_request(req).await?;
            Ok(resp)
        })
    }
}
