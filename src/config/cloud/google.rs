//! Vertex's credentials: Application Default Credentials.

use serde::Deserialize;

use super::{CloudAccess, CloudCredentials, CloudProblem, Sources};
use crate::config::{ProviderConfig, Secret};

/// Google's token endpoint, for an authorized user whose file names none.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The metadata server's host when `GCE_METADATA_HOST` is unset.
pub const METADATA_HOST: &str = "metadata.google.internal";

/// A service account key (the JSON file the console downloads). `Debug` hides the key.
#[derive(Clone, Debug)]
pub struct ServiceAccount {
    /// `client_email`: the JWT's issuer.
    pub client_email: String,
    /// `private_key_id`: the JWT's `kid`.
    pub private_key_id: Option<String>,
    /// `private_key`: PKCS#8 PEM.
    pub private_key: Secret,
    /// `token_uri`: where the signed JWT is exchanged (default `https://oauth2.googleapis.com/token`).
    pub token_uri: String,
}

/// An authorized user (gcloud's `auth application-default login`). `Debug` hides its secrets.
#[derive(Clone, Debug)]
pub struct AuthorizedUser {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: Secret,
    /// `refresh_token`.
    pub refresh_token: Secret,
    /// `token_uri` when the file has one, else `https://oauth2.googleapis.com/token`.
    pub token_uri: String,
}

/// An ADC file as written by Google's tools.
#[derive(Deserialize)]
struct AdcFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    token_uri: Option<String>,
}

/// The region and credentials of a `vertex` provider (validation requires its region).
pub(super) fn resolve(
    provider: &ProviderConfig,
    sources: &Sources<'_>,
) -> Result<CloudAccess, CloudProblem> {
    let region = provider.region.clone().unwrap_or_default();
    let named = sources.var("GOOGLE_APPLICATION_CREDENTIALS");
    let gcloud = sources
        .var("CLOUDSDK_CONFIG")
        .or_else(|| sources.home(".config/gcloud"))
        .map(|dir| format!("{dir}/application_default_credentials.json"));
    let credentials = match (named, gcloud) {
        (Some(path), _) => match read(sources, &path)? {
            Some(text) => parse(&text, &path, "GOOGLE_APPLICATION_CREDENTIALS")?,
            None => {
                return Err(invalid(format!(
                    "GOOGLE_APPLICATION_CREDENTIALS names {path}, which does not exist"
                )));
            }
        },
        (None, Some(path)) => match read(sources, &path)? {
            Some(text) => parse(&text, &path, "gcloud's default")?,
            None => metadata(sources),
        },
        (None, None) => metadata(sources),
    };
    Ok(CloudAccess {
        region,
        credentials,
    })
}

fn metadata(sources: &Sources<'_>) -> CloudCredentials {
    CloudCredentials::Metadata {
        host: sources
            .var("GCE_METADATA_HOST")
            .unwrap_or_else(|| METADATA_HOST.to_owned()),
    }
}

fn read(sources: &Sources<'_>, path: &str) -> Result<Option<String>, CloudProblem> {
    (sources.read)(path).map_err(|reason| invalid(format!("cannot read {path}: {reason}")))
}

fn invalid(reason: String) -> CloudProblem {
    CloudProblem::Invalid {
        field: "credentials",
        reason,
    }
}

/// The credentials of an ADC file's text, read from `path` (named by `by`).
fn parse(text: &str, path: &str, by: &str) -> Result<CloudCredentials, CloudProblem> {
    let file: AdcFile = serde_json::from_str(text)
        .map_err(|error| invalid(format!("{path} is not a credentials file: {error}")))?;
    let source = format!("{path} ({by})");
    let token_uri = file
        .token_uri
        .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_owned());
    match file.kind.as_str() {
        "service_account" => match (file.client_email, file.private_key) {
            (Some(client_email), Some(key)) => Ok(CloudCredentials::ServiceAccount {
                account: ServiceAccount {
                    client_email,
                    private_key_id: file.private_key_id,
                    private_key: Secret::new(key),
                    token_uri,
                },
                source,
            }),
            _ => Err(invalid(format!(
                "{path}: a service account needs client_email and private_key"
            ))),
        },
        "authorized_user" => match (file.client_id, file.client_secret, file.refresh_token) {
            (Some(client_id), Some(secret), Some(refresh)) => {
                Ok(CloudCredentials::AuthorizedUser {
                    user: AuthorizedUser {
                        client_id,
                        client_secret: Secret::new(secret),
                        refresh_token: Secret::new(refresh),
                        token_uri,
                    },
                    source,
                })
            }
            _ => Err(invalid(format!(
                "{path}: an authorized user needs client_id, client_secret and refresh_token"
            ))),
        },
        other => Err(invalid(format!(
            "{path}: credentials of type `{other}` are not supported (service_account or \
             authorized_user)"
        ))),
    }
}
