//! The Vertex provider against local servers on 127.0.0.1: a token endpoint that checks the
//! service account's JWT (signature and claims) and a Vertex endpoint that checks the token.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::Request as ServerRequest;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use tokio::time::Instant;

use super::*;
use crate::config::{CloudAccess, CloudCredentials, ProviderKind, Secret, ServiceAccount};
use crate::upstream::ResponseBody;
use crate::upstream::fixtures::{provider, request};

/// A throwaway RSA key made for these tests (openssl genpkey), and its public half.
const TEST_KEY: &str = include_str!("testdata/test-service-account.pem");
const TEST_PUBLIC_KEY: &str = include_str!("testdata/test-service-account.pub.b64");
const EMAIL: &str = "relay@test-project.iam.gserviceaccount.com";

/// Checks a JWT-bearer exchange as Google does: form fields, RS256 signature, claims.
fn check_exchange(body: &[u8], token_uri: &str) -> Result<(), String> {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or(format!("no {name}"))
    };
    if field("grant_type")? != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err("wrong grant_type".to_owned());
    }
    let assertion = field("assertion")?;
    let (signed, signature) = assertion.rsplit_once('.').ok_or("no signature")?;
    let public = STANDARD
        .decode(TEST_PUBLIC_KEY.trim())
        .map_err(|e| e.to_string())?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| e.to_string())?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| "bad signature".to_owned())?;
    let (header, claims) = signed.split_once('.').ok_or("no claims")?;
    let json = |part: &str| -> Result<serde_json::Value, String> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    };
    let header = json(header)?;
    let claims = json(claims)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    let ok = header["alg"] == "RS256"
        && header["kid"] == "key-1"
        && claims["iss"] == EMAIL
        && claims["aud"] == token_uri
        && claims["scope"] == token::SCOPE
        && iat.abs_diff(now) < 60
        && claims["exp"].as_u64() == Some(iat + 3600);
    if ok {
        Ok(())
    } else {
        Err(format!("wrong header or claims: {header} {claims}"))
    }
}

struct Fake {
    url: String,
    token_fetches: Arc<AtomicUsize>,
    /// The `authorization` header of the last Vertex request, its path and body.
    last: Arc<tokio::sync::Mutex<Option<(String, String, serde_json::Value)>>>,
}

/// A token endpoint at `/token` (answering tokens that live `expires_in` seconds, or never
/// answering when `hang`) and a Vertex endpoint everywhere else.
async fn fake(expires_in: u64, hang: bool) -> Fake {
    let token_fetches = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(tokio::sync::Mutex::new(None));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let token_uri = format!("{url}/token");
    let (fetches, seen) = (token_fetches.clone(), last.clone());
    let app = Router::new().fallback(move |request: ServerRequest| {
        let (fetches, seen, token_uri) = (fetches.clone(), seen.clone(), token_uri.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            if parts.uri.path() == "/token" {
                let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
                if hang {
                    std::future::pending::<()>().await;
                }
                return match check_exchange(&body, &token_uri) {
                    Ok(()) => Response::new(Body::from(format!(
                        r#"{{"access_token":"ya29.token-{n}","expires_in":{expires_in},"token_type":"Bearer"}}"#
                    ))),
                    Err(reason) => Response::builder().status(400).body(Body::from(reason)).unwrap(),
                };
            }
            let authorization = parts.headers["authorization"].to_str().unwrap().to_owned();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            *seen.lock().await = Some((authorization, parts.uri.path().to_owned(), body));
            Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(r#"{"id":"msg_1","type":"message","content":[]}"#))
                .unwrap()
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Fake {
        url,
        token_fetches,
        last,
    }
}

fn vertex(fake: &Fake, region: &str) -> VertexProvider {
    let mut config = provider(ProviderKind::Vertex, Some(&fake.url));
    config.project = Some("test-project".to_owned());
    config.region = Some(region.to_owned());
    let base_url: Url = fake.url.parse().unwrap();
    let resolved = ResolvedProvider {
        base_url: Some(base_url.clone()),
        config,
        key: None,
        cloud: Some(CloudAccess {
            region: region.to_owned(),
            credentials: CloudCredentials::ServiceAccount {
                account: ServiceAccount {
                    client_email: EMAIL.to_owned(),
                    private_key_id: Some("key-1".to_owned()),
                    private_key: Secret::new(TEST_KEY),
                    token_uri: format!("{}/token", fake.url),
                },
                source: "test".to_owned(),
            },
        }),
    };
    VertexProvider::new(&resolved, &base_url).unwrap()
}

#[tokio::test]
async fn a_service_account_jwt_is_exchanged_and_its_token_cached() {
    let fake = fake(3600, false).await;
    let provider = vertex(&fake, "us-east5");
    for _ in 0..3 {
        let response = provider.attempt(&request(false)).await.unwrap();
        assert!(matches!(response.body, ResponseBody::Full(_)));
    }
    assert_eq!(fake.token_fetches.load(Ordering::SeqCst), 1);
    let (authorization, path, body) = fake.last.lock().await.clone().unwrap();
    assert_eq!(authorization, "Bearer ya29.token-1");
    assert_eq!(
        path,
        "/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/claude-test:rawPredict"
    );
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none());
}

#[tokio::test]
async fn a_token_close_to_its_expiry_is_replaced_before_it_expires() {
    // A token shorter-lived than twice the 5-minute margin is replaced half-way through its
    // life: one that lives no time at all, at the next request.
    let fake = fake(0, false).await;
    let provider = vertex(&fake, "global");
    provider.attempt(&request(false)).await.unwrap();
    provider.attempt(&request(false)).await.unwrap();
    assert_eq!(fake.token_fetches.load(Ordering::SeqCst), 2);
    let (authorization, path, _) = fake.last.lock().await.clone().unwrap();
    assert_eq!(authorization, "Bearer ya29.token-2");
    assert!(path.contains("/locations/global/"), "{path}");
}

#[tokio::test]
async fn a_hanging_token_endpoint_fails_the_attempt_in_bounded_time() {
    let fake = fake(3600, true).await;
    let provider = vertex(&fake, "us-east5");
    let started = Instant::now();
    let error = provider.attempt(&request(true)).await.unwrap_err();
    // The fixtures' first-event timeout is 300 ms.
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            error,
            AttemptError::Timeout {
                phase: "access token"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn the_jwt_is_signed_with_the_accounts_key() {
    let der = token::pem_der(TEST_KEY).unwrap();
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
    let account = ServiceAccount {
        client_email: EMAIL.to_owned(),
        private_key_id: Some("key-1".to_owned()),
        private_key: Secret::new(TEST_KEY),
        token_uri: "https://oauth2.googleapis.com/token".to_owned(),
    };
    let jwt = token::jwt(&account, &key, SystemTime::now()).unwrap();
    let body =
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}");
    assert_eq!(
        check_exchange(body.as_bytes(), "https://oauth2.googleapis.com/token"),
        Ok(())
    );
    assert!(!format!("{account:?}").contains("PRIVATE KEY"));
}
