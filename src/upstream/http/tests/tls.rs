//! Upstream TLS against a local HTTPS server whose certificate (for `localhost`) is signed by a
//! test CA (`tls/`: generated once with openssl, valid for 100 years; test-only keys).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use relayrace_actors::AttemptError;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use super::{attempt, http_provider};
use crate::upstream::fixtures::request;
use crate::upstream::http::client_trusting;

const CA: &[u8] = include_bytes!("tls/ca.pem");
const CERT: &[u8] = include_bytes!("tls/localhost.pem");
const KEY: &[u8] = include_bytes!("tls/localhost.key");

/// An HTTPS server on 127.0.0.1 offering HTTP/2 and HTTP/1.1 by ALPN, answering every request
/// with a JSON message; its base URL, by the name its certificate is for.
async fn https_upstream() -> String {
    let certs = CertificateDer::pem_slice_iter(CERT)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(|_: Request<Incoming>| async {
                    let mut response = Response::new(Full::new(Bytes::from_static(
                        br#"{"type":"message","content":[]}"#,
                    )));
                    response
                        .headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn a_provider_signed_by_a_trusted_ca_is_reached_over_http2() {
    let url = https_upstream().await;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(CA) {
        roots.add(ca.unwrap()).unwrap();
    }
    let client = client_trusting(Duration::from_secs(2), Arc::new(roots)).unwrap();
    let upstream = Request::post(format!("{url}/v1/messages"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(upstream))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), Version::HTTP_2, "ALPN offered h2");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        body,
        Bytes::from_static(br#"{"type":"message","content":[]}"#)
    );
}

#[tokio::test]
async fn a_provider_whose_certificate_nobody_vouches_for_is_a_connection_error() {
    let url = https_upstream().await;
    let error = attempt(&http_provider(&url, |_| {}), &request(false))
        .await
        .unwrap_err();
    let AttemptError::Connection { message } = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.starts_with("connect error") && message.contains("certificate"),
        "{message}"
    );
}
