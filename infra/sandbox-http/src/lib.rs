//! What every Rust partner sandbox needs around its routes: a hyper server on a loopback port,
//! JSON replies, request bodies and queries, and a `main` that writes its port and stops on
//! SIGTERM (so `make dev` can stop it).

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use http_body_util::BodyExt;
pub use http_body_util::Full;
pub use hyper::body::{Bytes, Incoming};
pub use hyper::header::HeaderValue;
pub use hyper::{Method, Request, Response};
use serde_json::Value;

pub type Reply = Response<Full<Bytes>>;

/// Serves on `listener` until the task is dropped, each request through `handle`.
pub async fn serve<F, Fut>(listener: tokio::net::TcpListener, handle: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let reply = handle(request);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Starts serving on a free loopback port (tests): its address.
pub async fn start<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("the bound address");
    tokio::spawn(serve(listener, handle));
    address
}

/// A sandbox binary's life: bind `port` (0: any), write it to `port_file`, print `banner`
/// with the address, serve until Ctrl-C or SIGTERM.
pub fn run<F, Fut>(
    port: u16,
    port_file: Option<String>,
    banner: impl FnOnce(u16) -> String,
    handle: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let bound = listener.local_addr()?.port();
        if let Some(file) = port_file {
            std::fs::write(file, bound.to_string())?;
        }
        println!("{}", banner(bound));
        tokio::select! {
            _ = serve(listener, handle) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate() => {}
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

async fn terminate() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

pub async fn body_text(request: Request<Incoming>) -> String {
    match request.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(_) => String::new(),
    }
}

/// The request's query parameters.
pub fn query(request: &Request<Incoming>) -> HashMap<String, String> {
    request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

pub fn reply(status: u16, body: &Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}
