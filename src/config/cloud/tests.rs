use std::collections::HashMap;

use crate::config::{Config, ProviderConfig, ResolveError, load_from};

fn config(yaml: &str) -> Config {
    let config = load_from(yaml, std::iter::empty()).unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
}

const BEDROCK: &str = "providers:\n  - name: bedrock\n    type: bedrock\n";
const VERTEX: &str =
    "providers:\n  - name: vertex\n    type: vertex\n    project: my-project\n    region: global\n";

fn resolve(
    config: &Config,
    vars: &[(&str, &str)],
    files: &[(&str, &str)],
) -> Result<crate::config::Resolved, ResolveError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let files: HashMap<String, String> = files
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    config.resolve_with(
        |name| vars.get(name).cloned(),
        |path| Ok(files.get(path).cloned()),
    )
}

fn line(resolved: &crate::config::Resolved) -> String {
    resolved.providers[0]
        .cloud
        .as_ref()
        .unwrap()
        .credentials
        .describe()
}

#[test]
fn bedrock_takes_keys_from_the_environment_first() {
    let resolved = resolve(
        &config(BEDROCK),
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ),
            ("HOME", "/home/u"),
        ],
        &[(
            "/home/u/.aws/credentials",
            "[default]\naws_access_key_id = AKIAFILE\n",
        )],
    )
    .unwrap();
    let provider = &resolved.providers[0];
    assert_eq!(provider.cloud.as_ref().unwrap().region, "eu-west-1");
    assert_eq!(
        provider.base_url.as_ref().unwrap().as_str(),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/"
    );
    let described = line(&resolved);
    assert_eq!(
        described,
        "aws keys from environment (AWS_ACCESS_KEY_ID) (access key AKIA… (20 chars), session \
         token none)"
    );
    let debug = format!("{provider:?}");
    assert!(
        !debug.contains("EXAMPLEKEY") && !debug.contains("IOSFODNN7"),
        "{debug}"
    );
}

#[test]
fn bedrock_reads_the_profile_of_the_shared_files() {
    let resolved = resolve(
        &config(BEDROCK),
        &[("AWS_PROFILE", "work"), ("HOME", "/home/u")],
        &[
            (
                "/home/u/.aws/credentials",
                "[default]\naws_access_key_id = AKIADEFAULT\n\n[work]\n# the team's\n\
                 aws_access_key_id = ASIAWORKKEY000000000\naws_secret_access_key = s3cr3t\n\
                 aws_session_token = tok\n",
            ),
            (
                "/home/u/.aws/config",
                "[profile work]\nregion = us-west-2\n",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        resolved.providers[0].cloud.as_ref().unwrap().region,
        "us-west-2"
    );
    assert_eq!(
        line(&resolved),
        "aws keys from profile work of /home/u/.aws/credentials (access key ASIA… (20 chars), \
         session token set)"
    );
}

#[test]
fn bedrock_without_credentials_is_skipped_and_without_a_region_refused() {
    let resolved = resolve(
        &Config {
            providers: vec![
                config(BEDROCK).providers.remove(0),
                config(VERTEX).providers.remove(0),
            ],
            ..Config::default()
        },
        &[("AWS_REGION", "us-east-1")],
        &[],
    )
    .unwrap();
    assert_eq!(resolved.skipped[0].env_var, "AWS_ACCESS_KEY_ID");
    let error = resolve(&config(BEDROCK), &[("AWS_ACCESS_KEY_ID", "a")], &[]).unwrap_err();
    assert!(error.to_string().contains("providers[0].region"), "{error}");
}

#[test]
fn a_bedrock_api_key_is_used_when_named() {
    let yaml =
        format!("{BEDROCK}    region: us-east-1\n    api_key_env: AWS_BEARER_TOKEN_BEDROCK\n");
    let resolved = resolve(
        &config(&yaml),
        &[("AWS_BEARER_TOKEN_BEDROCK", "ABSKbedrockapikey0000000")],
        &[],
    )
    .unwrap();
    assert_eq!(
        line(&resolved),
        "bedrock api key AWS_BEARER_TOKEN_BEDROCK ABSK… (24 chars)"
    );
}

#[test]
fn vertex_reads_the_file_google_application_credentials_names() {
    let key = r#"{"type":"service_account","client_email":"relay@p.iam.gserviceaccount.com",
        "private_key_id":"k1","private_key":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n",
        "token_uri":"https://oauth2.googleapis.com/token"}"#;
    let resolved = resolve(
        &config(VERTEX),
        &[("GOOGLE_APPLICATION_CREDENTIALS", "/keys/sa.json")],
        &[("/keys/sa.json", key)],
    )
    .unwrap();
    let provider = &resolved.providers[0];
    assert_eq!(
        provider.base_url.as_ref().unwrap().as_str(),
        "https://aiplatform.googleapis.com/"
    );
    assert_eq!(
        line(&resolved),
        "service account relay@p.iam.gserviceaccount.com from /keys/sa.json \
         (GOOGLE_APPLICATION_CREDENTIALS)"
    );
    assert!(!format!("{provider:?}").contains("PRIVATE KEY"));
    let missing = resolve(
        &config(VERTEX),
        &[("GOOGLE_APPLICATION_CREDENTIALS", "/nope")],
        &[],
    );
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("providers[0].credentials")
    );
}

#[test]
fn vertex_falls_back_to_gcloud_then_the_metadata_server() {
    let user =
        r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#;
    let resolved = resolve(
        &config(VERTEX),
        &[("HOME", "/home/u")],
        &[(
            "/home/u/.config/gcloud/application_default_credentials.json",
            user,
        )],
    )
    .unwrap();
    assert!(line(&resolved).starts_with("authorized user (gcloud) from /home/u/.config/gcloud/"));
    let resolved = resolve(&config(VERTEX), &[], &[]).unwrap();
    assert_eq!(
        line(&resolved),
        "metadata server metadata.google.internal (no credentials file found)"
    );
}

#[test]
fn cloud_fields_are_checked() {
    let yaml = "providers:\n  - name: v\n    type: vertex\n  - name: a\n    type: anthropic\n    \
                api_key_env: K\n    region: us-east-1\n";
    let config = load_from(yaml, std::iter::empty()).unwrap();
    let paths: Vec<String> = config.validate().into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        [
            "providers[0].region",
            "providers[0].project",
            "providers[1].region"
        ]
    );
}

#[test]
fn cloud_providers_serve_the_default_mapping_when_they_configure_none() {
    let provider: &ProviderConfig = &config(VERTEX).providers[0];
    assert!(provider.serves("claude-haiku-4-5-20251001"));
    assert!(provider.serves("claude-opus-4-8"));
    assert!(!provider.serves("glm-4.6"));
    assert_eq!(
        provider.effective_model_mapping()["claude-sonnet-4-5*"],
        "claude-sonnet-4-5@20250929"
    );
}
