//! The floor for benchmarks: a minimal forwarding proxy (hyper server, pooled hyper client, no
//! logic) — what any relay costs at least. What relayrace adds beyond it is its own cost.
//!
//! `cargo run --release --example bench_floor -- 127.0.0.1:9002 http://127.0.0.1:9001`

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Incoming>;

async fn forward(
    client: Upstream,
    target: Uri,
    mut request: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let uri = format!("{target}{}", path.trim_start_matches('/'));
    if let Ok(uri) = uri.parse() {
        *request.uri_mut() = uri;
    }
    request.headers_mut().remove(hyper::header::HOST);
    client.request(request).await
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9002)));
    let target: Uri = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(Uri::from_static("http://127.0.0.1:9001/"));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| forward(client.clone(), target.clone(), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
