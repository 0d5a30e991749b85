//! `anthropic` and `anthropic_compatible` providers: one attempt is one HTTP request.

mod body;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use relayrace_actors::AttemptError;
use rustls::RootCertStore;
use tokio::time::{Instant, timeout_at};
use url::Url;

use super::failure::{self, UpstreamFailure};
use super::mapping::ModelMapping;
use super::stream::PendingStream;
use super::{
    ClientCredential, Endpoint, RelayRequest, ResponseBody, UpstreamBuildError, UpstreamResponse,
    relayed_headers, sse,
};
use crate::config::{AuthStyle, ResolvedProvider, TimeoutsConfig};

const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Largest error body read from an upstream.
const MAX_ERROR_BODY: usize = 1024 * 1024;
/// Idle connections kept per provider. After a burst the rest are closed instead of holding a
/// socket each (and the upstream's resources) until the idle timeout.
const MAX_IDLE_CONNECTIONS: usize = 32;
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const ANTHROPIC_VERSION_HEADER: HeaderName = HeaderName::from_static("anthropic-version");

/// The pooled HTTP/1.1 and HTTP/2 client (rustls, HTTP/2 by ALPN) of one provider. It follows
/// no redirects and uses no proxy.
pub(super) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP provider: its client, URLs, auth and timeouts.
pub(super) struct HttpProvider {
    client: HttpClient,
    messages_url: Url,
    count_tokens_url: Url,
    /// The endpoints' URIs as sent when the client gave no query string.
    messages_uri: Uri,
    count_tokens_uri: Uri,
    auth: Auth,
    model_mapping: ModelMapping,
    timeouts: TimeoutsConfig,
}

/// The auth header a provider sends.
enum Auth {
    None,
    Fixed(HeaderName, HeaderValue),
    Passthrough,
}

impl HttpProvider {
    /// The provider's client, at its checked `base_url`.
    pub(super) fn new(
        provider: &ResolvedProvider,
        base_url: &Url,
    ) -> Result<Self, UpstreamBuildError> {
        let config = &provider.config;
        let auth = auth(provider).ok_or_else(|| UpstreamBuildError::InvalidKey {
            provider: config.name.clone(),
        })?;
        let client = client(base_url, config.timeouts.connect).map_err(|source| {
            UpstreamBuildError::Client {
                provider: config.name.clone(),
                source,
            }
        })?;
        let messages_url = endpoint_url(base_url, Endpoint::Messages);
        let count_tokens_url = endpoint_url(base_url, Endpoint::CountTokens);
        let uri = |url: &Url| {
            url.as_str()
                .parse::<Uri>()
                .map_err(|_| UpstreamBuildError::RequestUri {
                    provider: config.name.clone(),
                })
        };
        Ok(HttpProvider {
            client,
            messages_uri: uri(&messages_url)?,
            count_tokens_uri: uri(&count_tokens_url)?,
            messages_url,
            count_tokens_url,
            auth,
            model_mapping: ModelMapping::new(&config.model_mapping),
            timeouts: config.timeouts,
        })
    }

    /// One attempt: `Ok` only at the commit point (see the module docs of `upstream`).
    pub(super) async fn attempt(
        &self,
        request: &RelayRequest,
    ) -> Result<UpstreamResponse, AttemptError> {
        let timing = Timing::start(&self.timeouts);
        let response = send(&self.client, self.request(request)?, &timing).await?;
        if !response.status().is_success() {
            let passthrough = matches!(self.auth, Auth::Passthrough);
            return Err(error_answer(response, timing.first_event_by, passthrough).await);
        }
        commit(response, &timing, request.stream).await
    }

    fn request(&self, request: &RelayRequest) -> Result<Request<Full<Bytes>>, AttemptError> {
        let uri = match request.query.as_deref().filter(|query| !query.is_empty()) {
            None => match request.endpoint {
                Endpoint::Messages => self.messages_uri.clone(),
                Endpoint::CountTokens => self.count_tokens_uri.clone(),
            },
            Some(query) => self.uri_with_query(request.endpoint, query)?,
        };
        let body = match self.model_mapping.get(&request.model) {
            Some(model) => body::with_model(&request.body, model),
            None => request.body.clone(),
        };
        let mut upstream = Request::new(Full::new(body));
        *upstream.method_mut() = Method::POST;
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = self.headers(request)?;
        Ok(upstream)
    }

    /// The endpoint's URI with the client's query string after the base URL's own.
    fn uri_with_query(&self, endpoint: Endpoint, query: &str) -> Result<Uri, AttemptError> {
        let mut url = match endpoint {
            Endpoint::Messages => self.messages_url.clone(),
            Endpoint::CountTokens => self.count_tokens_url.clone(),
        };
        let query = match url.query() {
            Some(base) if !base.is_empty() => format!("{base}&{query}"),
            _ => query.to_owned(),
        };
        url.set_query(Some(&query));
        url.as_str().parse().map_err(|_| AttemptError::Other {
            message: "the client's query string does not make a valid URI".to_owned(),
        })
    }

    /// The client's allowlisted headers, less any auth or framing, plus ours.
    fn headers(&self, request: &RelayRequest) -> Result<HeaderMap, AttemptError> {
        let mut headers = request.headers.clone();
        for name in [
            header::AUTHORIZATION,
            X_API_KEY,
            header::HOST,
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
            header::ACCEPT_ENCODING,
        ] {
            headers.remove(name);
        }
        headers.insert(header::CONTENT_TYPE, failure::json_content_type());
        if !headers.contains_key(ANTHROPIC_VERSION_HEADER) {
            let version = HeaderValue::from_static(ANTHROPIC_VERSION);
            headers.insert(ANTHROPIC_VERSION_HEADER, version);
        }
        match &self.auth {
            Auth::None => {}
            Auth::Fixed(name, value) => {
                headers.insert(name.clone(), value.clone());
            }
            Auth::Passthrough => {
                if let Some(credential) = &request.client_credential {
                    let (name, value) =
                        credential_header(credential).ok_or_else(|| AttemptError::Other {
                            message: "the client's credential is not a valid header value"
                                .to_owned(),
                        })?;
                    headers.insert(name, value);
                }
            }
        }
        Ok(headers)
    }
}

/// When an attempt must have reached each of its points, counted from when it is sent.
pub(super) struct Timing {
    /// The response headers, then the first event of a stream or the first bytes of a JSON
    /// answer.
    pub first_event_by: Instant,
    /// The whole request, stream included.
    pub deadline: Instant,
    /// Longest silence between two events (or two chunks of a JSON answer).
    pub idle: Duration,
}

impl Timing {
    /// The points of an attempt sent now.
    pub(super) fn start(timeouts: &TimeoutsConfig) -> Self {
        let sent = Instant::now();
        let deadline = sent + timeouts.total;
        Timing {
            first_event_by: deadline.min(sent + timeouts.first_event),
            deadline,
            idle: timeouts.idle,
        }
    }
}

/// Sends `request` and waits for its response headers until `timing.first_event_by`. A
/// redirect is a bad gateway: it is never followed (the credential would travel to wherever it
/// points), and a provider that redirects is misconfigured.
pub(super) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    timing: &Timing,
) -> Result<Response<Incoming>, AttemptError> {
    let response = match timeout_at(timing.first_event_by, client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => return Err(request_error(&error)),
        Err(_) => {
            return Err(AttemptError::Timeout {
                phase: "response headers",
            });
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let message = format!(
            "the provider answered with a redirect (status {}); redirects are not followed",
            status.as_u16()
        );
        return Err(UpstreamFailure::bad_gateway(&message).into_attempt_error(None));
    }
    Ok(response)
}

/// A 2xx answer taken to its commit point: a JSON body read whole and checked, or a stream's
/// SSE frames up to its first event.
pub(super) async fn commit(
    response: Response<Incoming>,
    timing: &Timing,
    stream: bool,
) -> Result<UpstreamResponse, AttemptError> {
    let status = response.status();
    let headers = relayed_headers(response.headers());
    if !stream {
        let body = full_answer(response, timing).await?;
        return Ok(UpstreamResponse {
            status,
            headers,
            body: ResponseBody::Full(body),
        });
    }
    let body = BodyDataStream::new(response.into_body());
    timing
        .pending(status, headers)
        .commit(sse::frames(Box::pin(body)))
        .await
}

impl Timing {
    /// A 2xx stream with these points, before its commit.
    pub(super) fn pending(&self, status: http::StatusCode, headers: HeaderMap) -> PendingStream {
        PendingStream {
            status,
            headers,
            first_event_by: self.first_event_by,
            deadline: self.deadline,
            idle: self.idle,
        }
    }
}

/// The base URL with the endpoint's path appended to its own (`…/api/anthropic/v1/messages`).
fn endpoint_url(base: &Url, endpoint: Endpoint) -> Url {
    let mut url = base.clone();
    let path = format!("{}{}", base.path().trim_end_matches('/'), endpoint.path());
    url.set_path(&path);
    url
}

/// The provider's auth; `None` when its key is not a valid header value.
fn auth(provider: &ResolvedProvider) -> Option<Auth> {
    let (name, value) = match (provider.config.auth, &provider.key) {
        (AuthStyle::Passthrough, _) => return Some(Auth::Passthrough),
        (_, None) => return Some(Auth::None),
        (AuthStyle::XApiKey, Some(key)) => (X_API_KEY, key.expose().to_owned()),
        (AuthStyle::Bearer, Some(key)) => {
            (header::AUTHORIZATION, format!("Bearer {}", key.expose()))
        }
    };
    Some(Auth::Fixed(name, sensitive(&value)?))
}

fn credential_header(credential: &ClientCredential) -> Option<(HeaderName, HeaderValue)> {
    match credential {
        ClientCredential::ApiKey(key) => Some((X_API_KEY, sensitive(key.expose())?)),
        ClientCredential::Bearer(token) => {
            let value = sensitive(&format!("Bearer {}", token.expose()))?;
            Some((header::AUTHORIZATION, value))
        }
    }
}

pub(super) fn sensitive(value: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(value).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// A JSON answer's whole body. Until it is read and is JSON the attempt has not committed, so
/// a body that stalls, breaks off or is not JSON fails over like an error status.
pub(super) async fn full_answer(
    response: Response<Incoming>,
    timing: &Timing,
) -> Result<Bytes, AttemptError> {
    let mut body = response.into_body();
    let mut chunks = Chunks::default();
    let mut next_by = timing.first_event_by;
    loop {
        match timeout_at(next_by.min(timing.deadline), next_chunk(&mut body)).await {
            Err(_) => return Err(AttemptError::Timeout { phase: "body" }),
            Ok(Some(Err(error))) => return Err(transport_error(&error, "body error")),
            Ok(Some(Ok(chunk))) => {
                chunks.push(chunk);
                next_by = Instant::now() + timing.idle;
            }
            Ok(None) => break,
        }
    }
    let body = chunks.into_bytes();
    if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        let failure = UpstreamFailure::bad_gateway("the provider's answer is not valid JSON");
        return Err(failure.into_attempt_error(None));
    }
    Ok(body)
}

/// A body's bytes, copied only when it came in more than one chunk.
#[derive(Default)]
struct Chunks {
    first: Option<Bytes>,
    joined: BytesMut,
}

impl Chunks {
    fn push(&mut self, chunk: Bytes) {
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(chunk),
            first => {
                if let Some(first) = first {
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&chunk);
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        self.first.unwrap_or_else(|| self.joined.freeze())
    }
}

/// The next data chunk of `body` (trailers are skipped).
pub(super) async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        match body.frame().await? {
            Ok(frame) => match frame.into_data() {
                Ok(data) => return Some(Ok(data)),
                Err(_trailers) => continue,
            },
            Err(error) => return Some(Err(error)),
        }
    }
}

/// A non-2xx answer as an attempt error, its body read within `read_by` (capped at 1 MiB).
/// With `passthrough`, a refused credential is the client's own, not the relay's.
pub(super) async fn error_answer(
    response: Response<Incoming>,
    read_by: Instant,
    passthrough: bool,
) -> AttemptError {
    let answer = read_error(response, read_by).await;
    let failure = UpstreamFailure::from_upstream(answer.status, answer.headers, answer.body);
    if passthrough {
        failure.into_client_error(answer.retry_after)
    } else {
        failure.into_attempt_error(answer.retry_after)
    }
}

/// A non-2xx answer as it came: status, relayed headers, `retry-after`, and as much of its body
/// (at most 1 MiB) as arrived by `read_by`.
pub(super) struct ErrorAnswer {
    pub status: http::StatusCode,
    pub headers: HeaderMap,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
    /// The upstream's own headers, for a provider that reads more of them.
    pub upstream_headers: HeaderMap,
}

/// Reads a non-2xx answer (see [`ErrorAnswer`]).
pub(super) async fn read_error(response: Response<Incoming>, read_by: Instant) -> ErrorAnswer {
    let status = response.status();
    let headers = relayed_headers(response.headers());
    let retry_after = failure::retry_after(response.headers(), SystemTime::now());
    let (parts, mut body) = response.into_parts();
    let mut read = BytesMut::new();
    while read.len() < MAX_ERROR_BODY {
        match timeout_at(read_by, next_chunk(&mut body)).await {
            Ok(Some(Ok(chunk))) => read.extend_from_slice(&chunk),
            _ => break,
        }
    }
    read.truncate(MAX_ERROR_BODY);
    ErrorAnswer {
        status,
        headers,
        retry_after,
        body: read.freeze(),
        upstream_headers: parts.headers,
    }
}

/// The client for the provider at `base`: pooled connections (at most
/// [`MAX_IDLE_CONNECTIONS`] idle, closed after 90 s idle), TCP_NODELAY, `connect` as the
/// connect timeout, rustls trusting [`trust_roots`], HTTP/2 when the server offers it. A plain
/// `http` provider never speaks TLS (redirects are not followed), so it does not load the roots.
pub(super) fn client(base: &Url, connect: Duration) -> Result<HttpClient, rustls::Error> {
    let roots = match base.scheme() {
        "https" => trust_roots(),
        _ => Arc::new(RootCertStore::empty()),
    };
    client_trusting(connect, roots)
}

/// [`client`], trusting `roots`.
fn client_trusting(
    connect: Duration,
    roots: Arc<RootCertStore>,
) -> Result<HttpClient, rustls::Error> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
}

/// The certificate authorities upstream TLS trusts: Mozilla's (webpki-roots) and the system's,
/// which include a corporate proxy's CA and those named by `SSL_CERT_FILE` / `SSL_CERT_DIR`.
/// Loaded once per process.
fn trust_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let system = rustls_native_certs::load_native_certs();
        for error in &system.errors {
            tracing::warn!(error = %error, "some system TLS roots could not be loaded");
        }
        let (added, ignored) = roots.add_parsable_certificates(system.certs);
        tracing::debug!(added, ignored, "system TLS roots loaded");
        Arc::new(roots)
    });
    roots.clone()
}

/// A failed request (before any response headers) as an attempt error.
fn request_error(error: &hyper_util::client::legacy::Error) -> AttemptError {
    if !error.is_connect() {
        return transport_error(error, "request error");
    }
    let timed_out = causes(error).any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    });
    if timed_out {
        return AttemptError::Timeout { phase: "connect" };
    }
    transport_error(error, "connect error")
}

/// A transport error as an attempt error; the message names the kind of failure and its root
/// cause, never the request's headers.
pub(super) fn transport_error(
    error: &(dyn std::error::Error + 'static),
    kind: &str,
) -> AttemptError {
    let root = causes(error).last();
    let message = match root {
        Some(cause) => format!("{kind}: {cause}"),
        None => format!("{kind}: {error}"),
    };
    AttemptError::Connection { message }
}

/// The causes of `error`, nearest first.
fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(
        error.source(),
        |cause: &&'a (dyn std::error::Error + 'static)| (*cause).source(),
    )
}
