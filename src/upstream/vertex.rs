//! `vertex` providers: Claude on Google Vertex AI.
//!
//! One attempt is one `POST {base}/v1/projects/{project}/locations/{region}/publishers/
//! anthropic/models/{model}:rawPredict` (or `:streamRawPredict` when streaming) with an OAuth2
//! bearer token of scope `cloud-platform` (see `token`). The body gets
//! `anthropic_version: vertex-2023-10-16` and loses `model`; the answer is the Anthropic API's
//! own JSON or SSE, so it goes through the same commit point as an `anthropic` provider's.

#[cfg(test)]
mod tests;
mod token;

use bytes::Bytes;
use http::{HeaderName, Method, Request, StatusCode, Uri, header};
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use relayrace_actors::AttemptError;
use url::Url;

use super::envelope::Envelope;
use super::http::{self as transport, HttpClient, Timing};
use super::mapping::ModelMapping;
use super::{Endpoint, RelayRequest, UpstreamBuildError, UpstreamResponse};
use crate::config::{ResolvedProvider, TimeoutsConfig};

pub(super) use token::Tokens;

/// Vertex's body: its version, `stream` kept, betas stay headers.
const ENVELOPE: Envelope = Envelope {
    anthropic_version: "vertex-2023-10-16",
    drop_stream: false,
    beta_in_body: false,
};

/// What a model id keeps unencoded in its path segment: unreserved characters and the `@` of
/// its version.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A Vertex provider: its client, the models' URL prefix, its tokens and timeouts.
pub(super) struct VertexProvider {
    client: HttpClient,
    /// `{base}/v1/projects/{project}/locations/{region}/publishers/anthropic/models/`.
    models_url: String,
    tokens: Tokens,
    model_mapping: ModelMapping,
    timeouts: TimeoutsConfig,
}

impl VertexProvider {
    /// The provider's client at `base_url`, with its resolved credentials.
    pub(super) fn new(
        provider: &ResolvedProvider,
        base_url: &Url,
    ) -> Result<Self, UpstreamBuildError> {
        let config = &provider.config;
        let build_error = |source| UpstreamBuildError::Client {
            provider: config.name.clone(),
            source,
        };
        let cloud = provider
            .cloud
            .as_ref()
            .ok_or_else(|| UpstreamBuildError::InvalidKey {
                provider: config.name.clone(),
            })?;
        let client = transport::client(base_url, config.timeouts.connect).map_err(build_error)?;
        let tokens = Tokens::new(&cloud.credentials, config.timeouts.connect).map_err(|_| {
            UpstreamBuildError::InvalidKey {
                provider: config.name.clone(),
            }
        })?;
        let project = config.project.as_deref().unwrap_or_default();
        let models_url = format!(
            "{}/v1/projects/{}/locations/{}/publishers/anthropic/models/",
            base_url.as_str().trim_end_matches('/'),
            utf8_percent_encode(project, SEGMENT),
            utf8_percent_encode(&cloud.region, SEGMENT),
        );
        Ok(VertexProvider {
            client,
            models_url,
            tokens,
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
            return Err(super::unserved_endpoint("vertex"));
        }
        let timing = Timing::start(&self.timeouts);
        let token = self.tokens.header(timing.first_event_by).await?;
        let mut upstream = self.request(request)?;
        upstream.headers_mut().insert(header::AUTHORIZATION, token);
        let response = transport::send(&self.client, upstream, &timing).await?;
        let status = response.status();
        if !status.is_success() {
            if status == StatusCode::UNAUTHORIZED {
                // The token may have been revoked: the next attempt fetches a new one.
                self.tokens.invalidate().await;
            }
            return Err(transport::error_answer(response, timing.first_event_by, false).await);
        }
        transport::commit(response, &timing, request.stream).await
    }

    fn request(&self, request: &RelayRequest) -> Result<Request<Full<Bytes>>, AttemptError> {
        let model = self
            .model_mapping
            .get(&request.model)
            .unwrap_or(&request.model);
        let method = if request.stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        let uri: Uri = format!(
            "{}{}:{method}",
            self.models_url,
            utf8_percent_encode(model, SEGMENT)
        )
        .parse()
        .map_err(|_| AttemptError::Other {
            message: "the model does not make a valid request URI".to_owned(),
        })?;
        let body = ENVELOPE
            .wrap(&request.body, &request.headers)
            .map_err(|error| super::bad_request(&error.to_string()))?;
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
        headers.insert(header::CONTENT_TYPE, super::failure::json_content_type());
        let mut upstream = Request::new(Full::new(body));
        *upstream.method_mut() = Method::POST;
        *upstream.uri_mut() = uri;
        *upstream.headers_mut() = headers;
        Ok(upstream)
    }
}
