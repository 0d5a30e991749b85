//! The relay's [`Upstream`]: one attempt of a client request against one provider.
//!
//! An attempt returns `Ok` only at its commit point: a 2xx status and, for a stream, a first
//! event that is not an error. Until then every failure is an [`AttemptError`] the runtime may
//! fail over on, because nothing has reached the client yet (a first event whose data is not
//! JSON is one: a 502). After the commit, a stream's failures surface as [`StreamError`]s from
//! the [`EventStream`], which also drops events that are not JSON and appends a `message_stop`
//! the upstream left out after its final `message_delta` ([`StreamStats`] counts both).
//!
//! Providers: `anthropic` and `anthropic_compatible` over HTTP (`http`), `bedrock` (SigV4,
//! AWS event-stream, [`bedrock`]) and `vertex` (OAuth2 tokens, `vertex`) over the same HTTP
//! client and commit point, and `simulated`, in process (`simulated`). All build their streams
//! with [`EventStream::new`], so idle and total timeouts apply the same way.

pub mod bedrock;
pub mod sse;

mod envelope;
mod failure;
#[cfg(test)]
mod fixtures;
mod http;
mod mapping;
mod simulated;
mod stream;
mod vertex;

use std::fmt;
use std::sync::Arc;

use ::http::{HeaderMap, HeaderName, StatusCode, header};
use bytes::Bytes;
use relayrace_actors::{AttemptError, Provider, RequestShape, Upstream};

use crate::config::{ProviderKind, ResolvedProvider, Secret};

pub use failure::UpstreamFailure;
pub use stream::{EventStream, StreamError, StreamStats};

/// The API endpoints relayed upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Endpoint {
    /// The endpoint's path, appended to a provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
        }
    }
}

/// The client's credential, kept only for `auth: passthrough` providers.
#[derive(Clone, Debug)]
pub enum ClientCredential {
    /// Sent as `x-api-key`.
    ApiKey(Secret),
    /// Sent as `authorization: Bearer …` (the token only, without the scheme).
    Bearer(Secret),
}

/// A client request as it goes upstream, shared by all attempts.
#[derive(Debug)]
pub struct RelayRequest {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The client's JSON body, unchanged.
    pub body: Bytes,
    /// The body's `model`.
    pub model: String,
    /// Whether the body asks for a stream (`"stream": true`).
    pub stream: bool,
    /// The client's query string (e.g. `beta=true`), forwarded to HTTP providers as it came.
    pub query: Option<String>,
    /// The client's headers, already allowlisted.
    pub headers: HeaderMap,
    /// The client's credential, for `passthrough` providers.
    pub client_credential: Option<ClientCredential>,
}

/// A committed, successful answer.
#[derive(Debug)]
pub struct UpstreamResponse {
    /// A 2xx status.
    pub status: StatusCode,
    /// The headers relayed back (see [`relayed_headers`]).
    pub headers: HeaderMap,
    /// The body.
    pub body: ResponseBody,
}

/// The body of a committed answer.
#[derive(Debug)]
pub enum ResponseBody {
    /// A complete JSON body.
    Full(Bytes),
    /// The SSE frames of a stream.
    Stream(EventStream),
}

/// The subset of upstream headers relayed to the client: `content-type`, `request-id`,
/// `retry-after` and `anthropic-ratelimit-*`.
pub fn relayed_headers(headers: &HeaderMap) -> HeaderMap {
    let mut relayed = HeaderMap::new();
    for (name, value) in headers {
        if is_relayed(name) {
            relayed.append(name.clone(), value.clone());
        }
    }
    relayed
}

fn is_relayed(name: &HeaderName) -> bool {
    name == header::CONTENT_TYPE
        || name == header::RETRY_AFTER
        || name.as_str() == "request-id"
        || name.as_str().starts_with("anthropic-ratelimit-")
}

/// Why the provider clients could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamBuildError {
    /// An endpoint's URL under the (checked) base URL cannot be sent as an HTTP request URI:
    /// it is longer than the HTTP library takes (about 64 KiB).
    #[error("provider `{provider}`: base_url is not a valid request URI")]
    RequestUri {
        /// The provider's name.
        provider: String,
    },
    /// The API key cannot be sent in a header.
    #[error("provider `{provider}`: its api key is not a valid header value")]
    InvalidKey {
        /// The provider's name.
        provider: String,
    },
    /// The HTTP client could not be built.
    #[error("provider `{provider}`: failed to build its http client")]
    Client {
        /// The provider's name.
        provider: String,
        /// What the TLS library said.
        #[source]
        source: rustls::Error,
    },
}

/// One client per provider; index `i` serves `ProviderId(i)`.
pub struct RelayUpstream {
    providers: Vec<ProviderClient>,
}

enum ProviderClient {
    Http(Box<http::HttpProvider>),
    Bedrock(Box<bedrock::BedrockProvider>),
    Vertex(Box<vertex::VertexProvider>),
    Simulated(Box<simulated::SimulatedProvider>),
}

impl RelayUpstream {
    /// Builds a client for each provider, in order.
    pub fn new(providers: &[ResolvedProvider]) -> Result<Self, UpstreamBuildError> {
        let clients = providers
            .iter()
            // Resolution gives each HTTP kind its checked base URL and `simulated` none.
            .map(
                |provider| match (&provider.base_url, provider.config.kind) {
                    (Some(base_url), ProviderKind::Bedrock) => {
                        bedrock::BedrockProvider::new(provider, base_url)
                            .map(|client| ProviderClient::Bedrock(Box::new(client)))
                    }
                    (Some(base_url), ProviderKind::Vertex) => {
                        vertex::VertexProvider::new(provider, base_url)
                            .map(|client| ProviderClient::Vertex(Box::new(client)))
                    }
                    (Some(base_url), _) => http::HttpProvider::new(provider, base_url)
                        .map(|client| ProviderClient::Http(Box::new(client))),
                    (None, _) => Ok(ProviderClient::Simulated(Box::new(
                        simulated::SimulatedProvider::new(&provider.config),
                    ))),
                },
            )
            .collect::<Result<_, _>>()?;
        Ok(RelayUpstream { providers: clients })
    }
}

impl Upstream for RelayUpstream {
    type Request = RelayRequest;
    type Response = UpstreamResponse;

    /// Requests (messages and token counts alike) are routed by their model.
    fn route_key(request: &RelayRequest) -> Option<&str> {
        Some(&request.model)
    }

    /// Hedge delays are learned per size of body, streams apart from whole answers.
    fn shape(request: &RelayRequest) -> RequestShape {
        RequestShape {
            bytes: request.body.len(),
            streamed: request.stream,
        }
    }

    async fn attempt(
        &self,
        provider: &Provider,
        request: Arc<RelayRequest>,
    ) -> Result<UpstreamResponse, AttemptError> {
        match self.providers.get(provider.id().index()) {
            Some(ProviderClient::Http(client)) => client.attempt(&request).await,
            Some(ProviderClient::Bedrock(client)) => client.attempt(&request).await,
            Some(ProviderClient::Vertex(client)) => client.attempt(&request).await,
            Some(ProviderClient::Simulated(client)) => client.attempt(&request).await,
            None => Err(AttemptError::Other {
                message: format!("provider {provider} has no client"),
            }),
        }
    }
}

/// A `count_tokens` request to a cloud provider that has no such endpoint: a 404
/// `not_found_error`, so it fails over to a provider that serves the model and counts.
fn unserved_endpoint(kind: &str) -> AttemptError {
    let body = crate::anthropic::error_body(
        "not_found_error",
        &format!("count_tokens is not available through {kind}"),
    );
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, failure::json_content_type());
    UpstreamFailure::from_upstream(StatusCode::NOT_FOUND, headers, Bytes::from(body))
        .into_attempt_error(None)
}

/// A request the relay cannot send as the provider needs it: a 400 `invalid_request_error`.
fn bad_request(message: &str) -> AttemptError {
    let body = crate::anthropic::error_body("invalid_request_error", message);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, failure::json_content_type());
    UpstreamFailure::from_upstream(StatusCode::BAD_REQUEST, headers, Bytes::from(body))
        .into_attempt_error(None)
}

impl fmt::Debug for RelayUpstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayUpstream")
            .field("providers", &self.providers.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_have_the_anthropic_paths() {
        assert_eq!(Endpoint::Messages.path(), "/v1/messages");
        assert_eq!(Endpoint::CountTokens.path(), "/v1/messages/count_tokens");
    }

    #[test]
    fn relays_only_content_type_request_id_retry_after_and_rate_limits() {
        let mut headers = HeaderMap::new();
        for name in [
            "content-type",
            "request-id",
            "retry-after",
            "anthropic-ratelimit-requests-remaining",
            "set-cookie",
            "server",
            "x-api-key",
        ] {
            headers.insert(HeaderName::from_static(name), "v".parse().unwrap());
        }
        let mut relayed: Vec<_> = relayed_headers(&headers)
            .keys()
            .map(|n| n.to_string())
            .collect();
        relayed.sort();
        assert_eq!(
            relayed,
            [
                "anthropic-ratelimit-requests-remaining",
                "content-type",
                "request-id",
                "retry-after"
            ]
        );
    }
}
