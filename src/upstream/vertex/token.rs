//! OAuth2 access tokens for Vertex (scope `cloud-platform`) from Application Default
//! Credentials: a service account's signed JWT exchanged at its `token_uri`, an authorized
//! user's refresh token, or the metadata server.
//!
//! A token is cached and fetched again [`REFRESH_MARGIN`] before it expires (or half-way
//! through a shorter life). One fetch at a time: requests that find the token stale wait for
//! it rather than each fetching. A fetch is bounded by [`FETCH_TIMEOUT`] and by the attempt's
//! own first-event deadline; one that fails or hangs fails the attempt (which fails over),
//! never the request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Method, Request, Uri, header};
use http_body_util::Full;
use relayrace_actors::AttemptError;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::{Instant, timeout_at};
use url::Url;

use crate::config::{AuthorizedUser, CloudCredentials, ServiceAccount};
use crate::upstream::http::{self as transport, HttpClient};

/// The scope Vertex needs.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long before its expiry a token is replaced.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Longest a token fetch may take.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token answer read.
const MAX_ANSWER: usize = 64 * 1024;
/// Life of a service account's JWT.
const JWT_LIFE: u64 = 3600;

/// A provider's access tokens: where they come from and the one in use.
pub(crate) struct Tokens {
    source: Source,
    client: HttpClient,
    cached: Mutex<Option<Cached>>,
}

enum Source {
    ServiceAccount {
        account: ServiceAccount,
        key: Box<RsaKeyPair>,
        token_uri: Uri,
    },
    AuthorizedUser {
        user: AuthorizedUser,
        token_uri: Uri,
    },
    Metadata {
        uri: Uri,
    },
}

struct Cached {
    header: HeaderValue,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

impl Tokens {
    /// The tokens of `credentials` (a Google kind); an error when a service account's key is
    /// not an RSA PKCS#8 PEM or a URI is invalid.
    pub(crate) fn new(credentials: &CloudCredentials, connect: Duration) -> Result<Self, String> {
        let uri = |text: &str| -> Result<(Uri, Url), String> {
            let url = Url::parse(text).map_err(|e| format!("token uri {text}: {e}"))?;
            let uri = url
                .as_str()
                .parse()
                .map_err(|_| format!("token uri {text}"))?;
            Ok((uri, url))
        };
        let (source, url) = match credentials {
            CloudCredentials::ServiceAccount { account, .. } => {
                let der = pem_der(account.private_key.expose())
                    .ok_or("the service account's private_key is not a PEM key")?;
                let key = RsaKeyPair::from_pkcs8(&der)
                    .map_err(|_| "the service account's private_key is not an RSA key")?;
                let (token_uri, url) = uri(&account.token_uri)?;
                let source = Source::ServiceAccount {
                    account: account.clone(),
                    key: Box::new(key),
                    token_uri,
                };
                (source, url)
            }
            CloudCredentials::AuthorizedUser { user, .. } => {
                let (token_uri, url) = uri(&user.token_uri)?;
                let source = Source::AuthorizedUser {
                    user: user.clone(),
                    token_uri,
                };
                (source, url)
            }
            CloudCredentials::Metadata { host } => {
                let (uri, url) = uri(&format!(
                    "http://{host}/computeMetadata/v1/instance/service-accounts/default/token"
                ))?;
                (Source::Metadata { uri }, url)
            }
            _ => return Err("not google credentials".to_owned()),
        };
        let client = transport::client(&url, connect).map_err(|e| e.to_string())?;
        Ok(Tokens {
            source,
            client,
            cached: Mutex::new(None),
        })
    }

    /// The `authorization` header for a request that must have its answer by `by`: the cached
    /// token, or a fresh one fetched in time.
    pub(crate) async fn header(&self, by: Instant) -> Result<HeaderValue, AttemptError> {
        let timeout = || AttemptError::Timeout {
            phase: "access token",
        };
        let fetch_by = by.min(Instant::now() + FETCH_TIMEOUT);
        let mut cached = timeout_at(fetch_by, self.cached.lock())
            .await
            .map_err(|_| timeout())?;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.header.clone());
        }
        let answer = timeout_at(fetch_by, self.fetch())
            .await
            .map_err(|_| timeout())??;
        let fetched = Instant::now();
        let life = Duration::from_secs(answer.expires_in.unwrap_or(JWT_LIFE));
        let refresh_at = if life > 2 * REFRESH_MARGIN {
            fetched + life - REFRESH_MARGIN
        } else {
            fetched + life / 2
        };
        let header = transport::sensitive(&format!("Bearer {}", answer.access_token))
            .ok_or_else(|| failed("the access token is not a valid header value"))?;
        *cached = Some(Cached {
            header: header.clone(),
            refresh_at,
        });
        Ok(header)
    }

    /// Forgets the cached token (the provider refused it).
    pub(crate) async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<TokenAnswer, AttemptError> {
        let request = match &self.source {
            Source::ServiceAccount {
                account,
                key,
                token_uri,
            } => {
                let assertion = jwt(account, key, SystemTime::now())?;
                form(
                    token_uri,
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", &assertion),
                    ],
                )
            }
            Source::AuthorizedUser { user, token_uri } => form(
                token_uri,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &user.client_id),
                    ("client_secret", user.client_secret.expose()),
                    ("refresh_token", user.refresh_token.expose()),
                ],
            ),
            Source::Metadata { uri } => {
                let mut request = Request::new(Full::new(Bytes::new()));
                *request.uri_mut() = uri.clone();
                request
                    .headers_mut()
                    .insert("metadata-flavor", HeaderValue::from_static("Google"));
                request
            }
        };
        let response =
            self.client.request(request).await.map_err(|error| {
                transport::transport_error(&error, "access token request error")
            })?;
        let status = response.status();
        let mut body = response.into_body();
        let mut read = BytesMut::new();
        while read.len() < MAX_ANSWER {
            match transport::next_chunk(&mut body).await {
                Some(Ok(chunk)) => read.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    return Err(transport::transport_error(
                        &error,
                        "access token body error",
                    ));
                }
                None => break,
            }
        }
        if !status.is_success() {
            return Err(failed(&format!(
                "the token endpoint answered with status {}",
                status.as_u16()
            )));
        }
        serde_json::from_slice(&read)
            .map_err(|_| failed("the token endpoint's answer is not a token"))
    }
}

/// A failed token fetch: a connection error, so the attempt fails over.
fn failed(reason: &str) -> AttemptError {
    AttemptError::Connection {
        message: format!("access token: {reason}"),
    }
}

/// A form POST to `uri`.
fn form(uri: &Uri, fields: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    request
}

/// The service account's signed JWT (RS256) asking for [`SCOPE`] at its `token_uri`, issued
/// at `now` for an hour.
pub(crate) fn jwt(
    account: &ServiceAccount,
    key: &RsaKeyPair,
    now: SystemTime,
) -> Result<String, AttemptError> {
    let iat = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = &account.private_key_id {
        header["kid"] = serde_json::Value::from(kid.as_str());
    }
    let claims = serde_json::json!({
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": iat,
        "exp": iat + JWT_LIFE,
    });
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        jwt.as_bytes(),
        &mut signature,
    )
    .map_err(|_| failed("the service account's key could not sign"))?;
    jwt.push('.');
    jwt.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jwt)
}

/// The DER bytes of a `-----BEGIN PRIVATE KEY-----` PEM block.
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let base64: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(base64).ok()
}
