//! What goes upstream: auth headers, model mapping, `anthropic-version`, URL and query.

use axum::response::IntoResponse;
use http::{HeaderMap, HeaderValue, StatusCode};

use super::super::{HttpProvider, endpoint_url};
use super::{attempt, fake, http_provider};
use crate::config::{AuthStyle, ProviderKind, ResolvedProvider, Secret};
use crate::upstream::fixtures::{provider, request};
use crate::upstream::{ClientCredential, Endpoint, UpstreamBuildError};

async fn auth_headers(
    edit: impl FnOnce(&mut ResolvedProvider),
    credential: Option<ClientCredential>,
) -> HeaderMap {
    let mut fake = fake::serve(|| (StatusCode::OK, "{}").into_response()).await;
    let mut request = request(false);
    request.client_credential = credential;
    request
        .headers
        .insert("x-api-key", HeaderValue::from_static("client-key"));
    request
        .headers
        .insert("authorization", HeaderValue::from_static("Bearer client"));
    attempt(&http_provider(&fake.url, edit), &request)
        .await
        .unwrap();
    fake.request().await.headers
}

#[tokio::test]
async fn each_auth_style_sends_its_header() {
    let headers = auth_headers(|_| {}, None).await;
    assert_eq!(headers["x-api-key"], "sk-test");
    assert!(headers.get("authorization").is_none());

    let headers = auth_headers(|p| p.config.auth = AuthStyle::Bearer, None).await;
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert!(headers.get("x-api-key").is_none());

    let headers = auth_headers(|p| p.key = None, None).await;
    assert!(headers.get("x-api-key").is_none() && headers.get("authorization").is_none());
}

#[tokio::test]
async fn passthrough_forwards_the_clients_credential() {
    let passthrough = |p: &mut ResolvedProvider| p.config.auth = AuthStyle::Passthrough;
    let key = ClientCredential::ApiKey(Secret::new("sk-client"));
    let headers = auth_headers(passthrough, Some(key)).await;
    assert_eq!(headers["x-api-key"], "sk-client");
    assert!(headers.get("authorization").is_none());

    let token = ClientCredential::Bearer(Secret::new("oauth-token"));
    let headers = auth_headers(passthrough, Some(token)).await;
    assert_eq!(headers["authorization"], "Bearer oauth-token");
    assert!(headers.get("x-api-key").is_none());
}

#[tokio::test]
async fn model_mapping_rewrites_only_the_model() {
    let mut fake = fake::serve(|| (StatusCode::OK, "{}").into_response()).await;
    let provider = http_provider(&fake.url, |p| {
        p.config
            .model_mapping
            .insert("claude-test".into(), "glm-4.6".into());
    });
    attempt(&provider, &request(false)).await.unwrap();
    let expected = String::from_utf8(request(false).body.to_vec())
        .unwrap()
        .replace("claude-test", "glm-4.6");
    assert_eq!(fake.request().await.body, expected);
}

#[tokio::test]
async fn anthropic_version_is_added_when_absent_and_kept_when_present() {
    let mut fake = fake::serve(|| (StatusCode::OK, "{}").into_response()).await;
    let provider = http_provider(&fake.url, |_| {});
    attempt(&provider, &request(false)).await.unwrap();
    assert_eq!(
        fake.request().await.headers["anthropic-version"],
        "2023-06-01"
    );

    let mut request = request(false);
    request
        .headers
        .insert("anthropic-version", HeaderValue::from_static("2024-01-01"));
    request
        .headers
        .insert("anthropic-beta", HeaderValue::from_static("b1"));
    attempt(&provider, &request).await.unwrap();
    let seen = fake.request().await.headers;
    assert_eq!(seen["anthropic-version"], "2024-01-01");
    assert_eq!(seen["anthropic-beta"], "b1");
}

#[tokio::test]
async fn the_base_url_path_prefixes_the_endpoint_and_the_query_follows() {
    let mut fake = fake::serve(|| (StatusCode::OK, "{}").into_response()).await;
    let provider = http_provider(&format!("{}/api/anthropic/", fake.url), |_| {});
    let mut count = request(false);
    count.endpoint = Endpoint::CountTokens;
    attempt(&provider, &count).await.unwrap();
    let seen = fake.request().await;
    assert_eq!(seen.path, "/api/anthropic/v1/messages/count_tokens");
    assert_eq!(seen.query, None);

    let mut beta = request(false);
    beta.query = Some("beta=true".to_owned());
    attempt(&provider, &beta).await.unwrap();
    let seen = fake.request().await;
    assert_eq!(seen.path, "/api/anthropic/v1/messages");
    assert_eq!(seen.query.as_deref(), Some("beta=true"));
}

#[test]
fn the_default_anthropic_base_url_makes_the_anthropic_endpoints() {
    let anthropic = provider(ProviderKind::Anthropic, None);
    let url = anthropic.checked_base_url().unwrap().unwrap();
    assert_eq!(
        endpoint_url(&url, Endpoint::Messages).as_str(),
        "https://api.anthropic.com/v1/messages"
    );
}

#[test]
fn a_base_url_too_long_for_a_request_uri_is_refused_at_build() {
    let long = format!("http://example.com/{}", "x".repeat(70_000));
    let compatible = provider(ProviderKind::AnthropicCompatible, Some(&long));
    let resolved = ResolvedProvider {
        base_url: compatible.checked_base_url().unwrap(),
        config: compatible,
        key: None,
        cloud: None,
    };
    let base_url = resolved.base_url.clone().unwrap();
    let error = HttpProvider::new(&resolved, &base_url).err().unwrap();
    assert!(matches!(error, UpstreamBuildError::RequestUri { .. }));
    assert_eq!(
        error.to_string(),
        "provider `test`: base_url is not a valid request URI"
    );
}
