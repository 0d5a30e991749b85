//! `bedrock` providers: Amazon Bedrock's InvokeModel API.
//!
//! One attempt is one `POST /model/{id}/invoke` (JSON) or `/invoke-with-response-stream` (AWS
//! event-stream), signed with SigV4 (service `bedrock`) or sent with a Bedrock API key as a
//! bearer token. The model moves from the body into the path (encoded once: ids contain `:`),
//! `anthropic_version: bedrock-2023-05-31` and the `anthropic-beta` header go into the body,
//! `model` and `stream` leave it.
//!
//! A stream's event-stream messages are decoded by [`EventStreamDecoder`] (every CRC checked):
//! each `chunk` carries a base64 Anthropic event, relayed as the SSE frame the Anthropic API
//! would have sent; an exception before the first chunk fails the attempt with its status (see
//! `exception`), one after it becomes an `event: error` frame. From there the stream is an
//! [`EventStream`](super::EventStream) like any other provider's.
//!
//! [`EventStreamDecoder`] is public so that fuzz targets and tests can drive it directly.

mod chunks;
mod eventstream;
mod exception;
mod sigv4;
#[cfg(test)]
mod tests;

use std::time::SystemTime;

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::{BodyDataStream, Full};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use relayrace_actors::AttemptError;
use tokio::time::timeout_at;
use url::Url;

pub use eventstream::MAX_MESSAGE_BYTES;
pub use eventstream::{DecodeError, EventStreamDecoder, HeaderValue as EventHeaderValue, Message};

use super::envelope::Envelope;
use super::http::{self as transport, HttpClient, Timing};
use super::mapping::ModelMapping;
use super::{Endpoint, RelayRequest, UpstreamBuildError, UpstreamResponse, relayed_headers};
use crate::config::{AwsKeys, CloudCredentials, ResolvedProvider, TimeoutsConfig};
use chunks::Event;

/// Bedrock's body: its version, no `stream`, the betas in the body.
const ENVELOPE: Envelope = Envelope {
    anthropic_version: "bedrock-2023-05-31",
    drop_stream: true,
    beta_in_body: true,
};

/// What a model id keeps unencoded in its path segment: unreserved characters (`:` and `/` are
/// encoded, as the AWS SDKs do).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

/// A Bedrock provider: its client, endpoint, credentials and timeouts.
pub(super) struct BedrockProvider {
    client: HttpClient,
    /// `scheme://host[:port]`.
    origin: String,
    /// The `host` header as sent (and signed).
    host: String,
    /// The base URL's own path, without a trailing `/`.
    base_path: String,
    region: String,
    auth: Auth,
    model_mapping: ModelMapping,
    timeouts: TimeoutsConfig,
}

enum Auth {
    SigV4(AwsKeys),
    Bearer(HeaderValue),
}

impl BedrockProvider {
    /// The provider's client at `base_url`, with its resolved credentials.
    pub(super) fn new(
        provider: &ResolvedProvider,
        base_url: &Url,
    ) -> Result<Self, UpstreamBuildError> {
        let config = &provider.config;
        let invalid_key = || UpstreamBuildError::InvalidKey {
            provider: config.name.clone(),
        };
        let cloud = provider.cloud.as_ref().ok_or_else(invalid_key)?;
        let auth = match &cloud.credentials {
            CloudCredentials::AwsKeys { keys, .. } => Auth::SigV4(keys.clone()),
            CloudCredentials::BedrockApiKey { key, .. } => Auth::Bearer(
                transport::sensitive(&format!("Bearer {}", key.expose()))
                    .ok_or_else(invalid_key)?,
            ),
            _ => return Err(invalid_key()),
        };
        let client = transport::client(base_url, config.timeouts.connect).map_err(|source| {
            UpstreamBuildError::Client {
                provider: config.name.clone(),
                source,
            }
        })?;
        let host = match (base_url.host_str(), base_url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(UpstreamBuildError::RequestUri {
                    provider: config.name.clone(),
                });
            }
        };
        Ok(BedrockProvider {
            client,
            origin: format!("{}://{host}", base_url.scheme()),
            host,
            base_path: base_url.path().trim_end_matches('/').to_owned(),
            region: cloud.region.clone(),
            auth,
            model_mapping: ModelMapping::new(&config.effective_model_mapping()),
            timeouts: config.timeouts,
        })
    }

    /// One attempt: `Ok` only at the commit point (see the module docs of `upstream`).
    pub(super) async fn attempt(
        &self,
        request: &RelayRequest,
    ) -> Result<UpstreamResponse, AttemptError> {
        if request.endpoint == Endpoint::CountTokens {
            return Err(super::unserved_endpoint("bedrock"));
        }
        let timing = Timing::start(&self.timeouts);
        let response = transport::send(&self.client, self.request(request)?, &timing).await?;
        if !response.status().is_success() {
            let answer = transport::read_error(response, timing.first_event_by).await;
            return Err(exception::error_answer(answer));
        }
        if !request.stream {
            return transport::commit(response, &timing, false).await;
        }
        let status = response.status();
        let mut headers = relayed_headers(response.headers());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let mut events = Box::pin(chunks::events(BodyDataStream::new(response.into_body())));
        // Before the first chunk an exception is the attempt's failure, with its status.
        let first = match timeout_at(timing.first_event_by, events.next()).await {
            Err(_) => {
                return Err(AttemptError::Timeout {
                    phase: "first event",
                });
            }
            Ok(None) => {
                return Err(AttemptError::Connection {
                    message: "stream ended before the first event".to_owned(),
                });
            }
            Ok(Some(Err(error))) => return Err(error.attempt_error()),
            Ok(Some(Ok(Event::Exception(exception)))) => {
                return Err(exception.into_attempt_error());
            }
            Ok(Some(Ok(Event::Chunk(frame)))) => frame,
        };
        let rest = events.map(|event| event.map(Event::into_frame));
        let frames = stream::once(async move { Ok(first) }).chain(rest);
        timing.pending(status, headers).commit(frames).await
    }

    fn request(&self, request: &RelayRequest) -> Result<Request<Full<Bytes>>, AttemptError> {
        let model = self
            .model_mapping
            .get(&request.model)
            .unwrap_or(&request.model);
        let action = if request.stream {
            "invoke-with-response-stream"
        } else {
            "invoke"
        };
        let path = format!(
            "{}/model/{}/{action}",
            self.base_path,
            utf8_percent_encode(model, SEGMENT)
        );
        let uri: Uri =
            format!("{}{path}", self.origin)
                .parse()
                .map_err(|_| AttemptError::Other {
                    message: "the model does not make a valid request URI".to_owned(),
                })?;
        let body = ENVELOPE
            .wrap(&request.body, &request.headers)
            .map_err(|error| super::bad_request(&error.to_string()))?;
        let accept = if request.stream {
            EVENT_STREAM
        } else {
            "application/json"
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
        self.authorize(&mut headers, &path, accept, &body)?;
        let mut upstream = Request::new(Full::new(body));
        *upstream.method_mut() = Method::POST;
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = headers;
        Ok(upstream)
    }

    /// Adds the bearer token, or the SigV4 signature over the request as it is sent.
    fn authorize(
        &self,
        headers: &mut HeaderMap,
        path: &str,
        accept: &str,
        body: &[u8],
    ) -> Result<(), AttemptError> {
        let keys = match &self.auth {
            Auth::Bearer(value) => {
                headers.insert(header::AUTHORIZATION, value.clone());
                return Ok(());
            }
            Auth::SigV4(keys) => keys,
        };
        let key = sigv4::SigningKey {
            access_key_id: keys.access_key_id.expose(),
            secret_access_key: keys.secret_access_key.expose(),
            session_token: keys.session_token.as_ref().map(|token| token.expose()),
        };
        let unsigned = sigv4::Unsigned {
            method: "POST",
            path,
            query: "",
            headers: &[
                ("host", &self.host),
                ("content-type", "application/json"),
                ("accept", accept),
            ],
            payload: body,
        };
        let signed = sigv4::sign(&key, &self.region, "bedrock", SystemTime::now(), &unsigned);
        let invalid = || AttemptError::Other {
            message: "the aws credentials are not valid header values".to_owned(),
        };
        headers.insert(
            X_AMZ_DATE,
            HeaderValue::from_str(&signed.amz_date).map_err(|_| invalid())?,
        );
        headers.insert(
            header::AUTHORIZATION,
            transport::sensitive(&signed.authorization).ok_or_else(invalid)?,
        );
        if let Some(token) = key.session_token {
            headers.insert(
                X_AMZ_SECURITY_TOKEN,
                transport::sensitive(token).ok_or_else(invalid)?,
            );
        }
        Ok(())
    }
}
