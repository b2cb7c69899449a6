//! The settings of the cloud kinds (`azure-openai`, `bedrock`, `vertex`):
//! where the cloud serves the API, and the credentials it takes, resolved
//! once when the file is read so that `bulwark check` reports a missing
//! region, project or credential at its key path, and a reload picks up
//! rotated credentials.
//!
//! Credentials found outside the file (AWS's environment variables and
//! shared credentials file, a Google service-account file) follow each
//! cloud's own SDK chain, so a machine already set up for the AWS CLI or
//! `gcloud` needs no secret in Bulwark's config.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::raw::RawProvider;
use super::{Issue, ProviderKind, Secret};

/// The environment variables the credential chains read.
pub(crate) const AMBIENT: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_BEARER_TOKEN_BEDROCK",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "HOME",
];

/// The largest credentials file read; real ones are a few KiB.
const MAX_CREDENTIALS_FILE: u64 = 1024 * 1024;

/// Microsoft Entra ID's public cloud login endpoint.
pub const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The scope Azure OpenAI's tokens are asked for.
pub const AZURE_OPENAI_SCOPE: &str = "https://cognitiveservices.azure.com/.default";
/// Where Google's service-account tokens are issued when the key file names no `token_uri`.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEntra {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub authority: Option<String>,
    pub scope: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAws {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
    pub credentials_file: Option<String>,
}

/// A cloud's settings, on a provider of a cloud kind.
#[derive(Debug, Clone, PartialEq)]
pub enum CloudConfig {
    Azure(AzureConfig),
    Bedrock(BedrockConfig),
    Vertex(VertexConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AzureConfig {
    /// The `api-version` of the deployment paths; `None` for the `/openai/v1/` surface.
    pub api_version: Option<String>,
    /// Entra ID client credentials; without them the provider's `api_key`
    /// goes in the `api-key` header.
    pub entra: Option<EntraConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EntraConfig {
    pub authority: String,
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BedrockConfig {
    pub region: String,
    /// Signing credentials; `None` when the provider's `api_key` is a
    /// Bedrock API key, sent as a bearer token.
    pub credentials: Option<AwsCredentials>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    /// Where they were found, for `bulwark check`: never a secret.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VertexConfig {
    pub project: String,
    pub region: String,
    pub service_account: ServiceAccount,
}

/// The parts of a Google service-account key file that make a token.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: Option<String>,
    /// PEM (PKCS#8) RSA private key.
    pub private_key: Secret,
    pub token_uri: String,
}

impl CloudConfig {
    /// How the cloud's requests are authenticated, and with what, in
    /// words for `bulwark check`; never a secret.
    pub fn describe(&self, region_or_url: &str) -> String {
        match self {
            CloudConfig::Azure(azure) => {
                let surface = match &azure.api_version {
                    Some(version) => format!("deployments, api-version {version}"),
                    None => "the /openai/v1/ surface".into(),
                };
                let auth = match &azure.entra {
                    Some(entra) => format!(
                        "Entra ID tokens for client {} of tenant {}",
                        entra.client_id, entra.tenant_id
                    ),
                    None => "an api-key".into(),
                };
                format!("{region_or_url}, {surface}, {auth}")
            }
            CloudConfig::Bedrock(bedrock) => match &bedrock.credentials {
                Some(c) => format!(
                    "{}, SigV4 with access key {} from {}{}",
                    bedrock.region,
                    c.access_key_id,
                    c.source,
                    if c.session_token.is_some() {
                        " (session credentials)"
                    } else {
                        ""
                    }
                ),
                None => format!("{}, a Bedrock API key", bedrock.region),
            },
            CloudConfig::Vertex(vertex) => format!(
                "project {}, {}, service account {} (tokens from {})",
                vertex.project,
                vertex.region,
                vertex.service_account.client_email,
                vertex.service_account.token_uri
            ),
        }
    }

    /// Every secret the cloud's settings hold, for the provider's redactor.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            CloudConfig::Azure(azure) => azure
                .entra
                .iter()
                .map(|entra| entra.client_secret.expose())
                .collect(),
            CloudConfig::Bedrock(bedrock) => bedrock
                .credentials
                .iter()
                .flat_map(|c| {
                    std::iter::once(c.secret_access_key.expose())
                        .chain(c.session_token.as_ref().map(Secret::expose))
                })
                .collect(),
            CloudConfig::Vertex(vertex) => vec![vertex.service_account.private_key.expose()],
        }
    }
}

/// The base URL a cloud kind uses when the provider names none.
pub(crate) fn default_base_url(raw: &RawProvider) -> Option<String> {
    let region = raw.region.as_deref().filter(|r| valid_region(r))?;
    match raw.kind {
        ProviderKind::Bedrock => Some(format!("https://bedrock-runtime.{region}.amazonaws.com")),
        ProviderKind::Vertex if region == "global" => {
            Some("https://aiplatform.googleapis.com".to_string())
        }
        ProviderKind::Vertex => Some(format!("https://{region}-aiplatform.googleapis.com")),
        _ => None,
    }
}

/// A region goes into a host name and a URL path: letters, digits and dashes only.
fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The cloud settings of a provider, checked against its kind: a cloud's
/// keys on another kind are refused, as a typo would be.
pub(crate) fn build(
    raw: &mut RawProvider,
    ambient: &BTreeMap<&'static str, String>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<CloudConfig> {
    let kind = raw.kind;
    let mut foreign = |key: &str, set: bool, owner: &str| {
        if set {
            issues.push(Issue::new(
                format!("{path}.{key}"),
                format!("only providers of kind {owner} take `{key}`"),
            ));
        }
    };
    if kind != ProviderKind::AzureOpenAi {
        foreign("api_version", raw.api_version.is_some(), "azure-openai");
        foreign("entra", raw.entra.is_some(), "azure-openai");
    }
    if !matches!(kind, ProviderKind::Bedrock | ProviderKind::Vertex) {
        foreign("region", raw.region.is_some(), "bedrock or vertex");
    }
    if kind != ProviderKind::Bedrock {
        foreign("aws", raw.aws.is_some(), "bedrock");
    }
    if kind != ProviderKind::Vertex {
        foreign("project", raw.project.is_some(), "vertex");
        foreign("credentials_file", raw.credentials_file.is_some(), "vertex");
    }
    match kind {
        ProviderKind::AzureOpenAi => azure(raw, path, issues).map(CloudConfig::Azure),
        ProviderKind::Bedrock => bedrock(raw, ambient, path, issues).map(CloudConfig::Bedrock),
        ProviderKind::Vertex => vertex(raw, ambient, path, issues).map(CloudConfig::Vertex),
        _ => None,
    }
}

fn azure(raw: &mut RawProvider, path: &str, issues: &mut Vec<Issue>) -> Option<AzureConfig> {
    if raw.base_url.is_none() {
        issues.push(Issue::new(
            format!("{path}.base_url"),
            "required for kind azure-openai: the resource's endpoint, e.g. https://my-resource.openai.azure.com",
        ));
    }
    if let Some(version) = &raw.api_version
        && !version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        issues.push(Issue::new(
            format!("{path}.api_version"),
            "an API version is a date such as 2024-10-21 (or 2025-04-01-preview)",
        ));
    }
    let entra = raw.entra.take().map(|entra| EntraConfig {
        authority: entra
            .authority
            .unwrap_or_else(|| ENTRA_AUTHORITY.to_string())
            .trim_end_matches('/')
            .to_string(),
        tenant_id: entra.tenant_id,
        client_id: entra.client_id,
        client_secret: Secret::new(entra.client_secret),
        scope: entra
            .scope
            .unwrap_or_else(|| AZURE_OPENAI_SCOPE.to_string()),
    });
    match (&entra, raw.api_key.as_deref().filter(|k| !k.is_empty())) {
        (None, None) => issues.push(Issue::new(
            path,
            "kind azure-openai needs `api_key` (the resource's key) or `entra` (client credentials)",
        )),
        (Some(_), Some(_)) => issues.push(Issue::new(
            format!("{path}.entra"),
            "give `api_key` or `entra`, not both",
        )),
        _ => {}
    }
    Some(AzureConfig {
        api_version: raw.api_version.take(),
        entra,
    })
}

fn required_region(raw: &RawProvider, path: &str, issues: &mut Vec<Issue>) -> Option<String> {
    match raw.region.as_deref() {
        Some(region) if valid_region(region) => Some(region.to_string()),
        Some(_) => {
            issues.push(Issue::new(
                format!("{path}.region"),
                "a region is lower-case letters, digits and dashes, e.g. us-east-1",
            ));
            None
        }
        None => {
            issues.push(Issue::new(
                format!("{path}.region"),
                "required: the cloud region the models are served in, e.g. us-east-1",
            ));
            None
        }
    }
}

fn bedrock(
    raw: &mut RawProvider,
    ambient: &BTreeMap<&'static str, String>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<BedrockConfig> {
    let region = required_region(raw, path, issues)?;
    let aws = raw.aws.take();
    // A Bedrock API key in the file wins, as an explicit setting; then
    // explicit AWS keys; then the environment and the shared file, in the
    // order AWS's SDKs read them.
    if raw.api_key.as_deref().is_some_and(|k| !k.is_empty()) {
        if aws.is_some() {
            issues.push(Issue::new(
                format!("{path}.aws"),
                "give `api_key` (a Bedrock API key) or `aws` (signing credentials), not both",
            ));
        }
        return Some(BedrockConfig {
            region,
            credentials: None,
        });
    }
    let aws = aws.unwrap_or_default();
    if aws.access_key_id.is_some() || aws.secret_access_key.is_some() {
        let (Some(id), Some(secret)) = (aws.access_key_id, aws.secret_access_key) else {
            issues.push(Issue::new(
                format!("{path}.aws"),
                "`access_key_id` and `secret_access_key` go together",
            ));
            return None;
        };
        return Some(BedrockConfig {
            region,
            credentials: Some(AwsCredentials {
                access_key_id: id,
                secret_access_key: Secret::new(secret),
                session_token: aws.session_token.map(Secret::new),
                source: format!("{path}.aws"),
            }),
        });
    }
    // A profile or file named in the config is as explicit as keys there:
    // the environment's credentials do not override it, as the CLI's
    // `--profile` is not overridden by them.
    let named = aws.profile.is_some() || aws.credentials_file.is_some();
    if let Some(key) = ambient.get("AWS_BEARER_TOKEN_BEDROCK").filter(|_| !named) {
        raw.api_key = Some(key.clone());
        return Some(BedrockConfig {
            region,
            credentials: None,
        });
    }
    if let (Some(id), Some(secret), false) = (
        ambient.get("AWS_ACCESS_KEY_ID"),
        ambient.get("AWS_SECRET_ACCESS_KEY"),
        named,
    ) {
        return Some(BedrockConfig {
            region,
            credentials: Some(AwsCredentials {
                access_key_id: id.clone(),
                secret_access_key: Secret::new(secret.clone()),
                session_token: ambient.get("AWS_SESSION_TOKEN").cloned().map(Secret::new),
                source: "the AWS_ACCESS_KEY_ID environment variables".into(),
            }),
        });
    }
    let file = aws
        .credentials_file
        .map(PathBuf::from)
        .or_else(|| {
            ambient
                .get("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
        })
        .or_else(|| {
            ambient
                .get("HOME")
                .map(|home| PathBuf::from(home).join(".aws").join("credentials"))
        });
    let profile = aws
        .profile
        .or_else(|| ambient.get("AWS_PROFILE").cloned())
        .unwrap_or_else(|| "default".to_string());
    let found = file
        .as_ref()
        .and_then(|file| read_small(file).ok())
        .and_then(|text| shared_credentials(&text, &profile))
        .map(|mut credentials| {
            if let Some(file) = &file {
                credentials.source = format!("profile `{profile}` of {}", file.display());
            }
            credentials
        });
    match found {
        Some(credentials) => Some(BedrockConfig {
            region,
            credentials: Some(credentials),
        }),
        None => {
            issues.push(Issue::new(
                format!("{path}.aws"),
                format!(
                    "no AWS credentials found: set `api_key` (a Bedrock API key), `aws.access_key_id` and `aws.secret_access_key`, the AWS_* environment variables, or profile `{profile}` in {}",
                    file.as_ref()
                        .map_or("~/.aws/credentials".to_string(), |f| f.display().to_string())
                ),
            ));
            None
        }
    }
}

/// A profile's keys from AWS's shared credentials file (INI: `[profile]`
/// sections of `key = value` lines, `#` and `;` comments).
fn shared_credentials(text: &str, profile: &str) -> Option<AwsCredentials> {
    let mut in_profile = false;
    let mut keys: BTreeMap<&str, &str> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if in_profile {
                break;
            }
            in_profile = name.trim() == profile;
            continue;
        }
        if in_profile && let Some((key, value)) = line.split_once('=') {
            keys.insert(key.trim(), value.trim());
        }
    }
    Some(AwsCredentials {
        access_key_id: keys.get("aws_access_key_id")?.to_string(),
        secret_access_key: Secret::new(*keys.get("aws_secret_access_key")?),
        session_token: keys
            .get("aws_session_token")
            .map(|token| Secret::new(*token)),
        source: String::new(),
    })
}

fn vertex(
    raw: &mut RawProvider,
    ambient: &BTreeMap<&'static str, String>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<VertexConfig> {
    let region = required_region(raw, path, issues);
    let project = match raw.project.take() {
        Some(project)
            if !project.is_empty()
                && project
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':' || b == b'.') =>
        {
            Some(project)
        }
        Some(_) => {
            issues.push(Issue::new(
                format!("{path}.project"),
                "a Google Cloud project id is letters, digits and dashes",
            ));
            None
        }
        None => {
            issues.push(Issue::new(
                format!("{path}.project"),
                "required for kind vertex: the Google Cloud project id",
            ));
            None
        }
    };
    if raw.api_key.is_some() {
        issues.push(Issue::new(
            format!("{path}.api_key"),
            "Vertex AI takes a service account (`credentials_file`), not an API key",
        ));
    }
    let file = raw
        .credentials_file
        .take()
        .or_else(|| ambient.get("GOOGLE_APPLICATION_CREDENTIALS").cloned());
    let Some(file) = file else {
        issues.push(Issue::new(
            format!("{path}.credentials_file"),
            "required for kind vertex (or GOOGLE_APPLICATION_CREDENTIALS): a service account's JSON key file",
        ));
        return None;
    };
    let service_account = match read_small(&PathBuf::from(&file))
        .map_err(|e| format!("cannot read {file}: {e}"))
        .and_then(|text| service_account(&text).map_err(|e| format!("{file}: {e}")))
    {
        Ok(account) => account,
        Err(message) => {
            issues.push(Issue::new(format!("{path}.credentials_file"), message));
            return None;
        }
    };
    Some(VertexConfig {
        project: project?,
        region: region?,
        service_account,
    })
}

/// A service-account key file's fields; the messages never quote the key.
fn service_account(text: &str) -> Result<ServiceAccount, String> {
    #[derive(Deserialize)]
    struct File {
        #[serde(rename = "type")]
        kind: Option<String>,
        client_email: Option<String>,
        private_key_id: Option<String>,
        private_key: Option<String>,
        token_uri: Option<String>,
    }
    let file: File = serde_json::from_str(text)
        .map_err(|_| "not a service account's JSON key file".to_string())?;
    if file.kind.as_deref().is_some_and(|k| k != "service_account") {
        return Err("not a service account's key file (its `type` is not service_account; user credentials from `gcloud auth` are not supported)".into());
    }
    let private_key = file
        .private_key
        .filter(|k| k.contains("PRIVATE KEY"))
        .ok_or("the file has no `private_key` in PEM form")?;
    // Checked now, so that a broken key fails `bulwark check`, not the
    // first request.
    if jsonwebtoken::EncodingKey::from_rsa_pem(private_key.as_bytes()).is_err() {
        return Err("its `private_key` is not a usable RSA key".into());
    }
    let token_uri = file
        .token_uri
        .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string());
    if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
        return Err("its `token_uri` is not an http(s) URL".into());
    }
    Ok(ServiceAccount {
        client_email: file.client_email.ok_or("the file has no `client_email`")?,
        private_key_id: file.private_key_id,
        private_key: Secret::new(private_key),
        token_uri,
    })
}

fn read_small(path: &PathBuf) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CREDENTIALS_FILE)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CloudConfig as C, Config};

    /// A config read with `env` as its whole environment.
    pub(super) fn load(
        yaml: &str,
        env: &[(&str, &str)],
    ) -> Result<Config, crate::config::ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_yaml(yaml, "t.yaml", &|name: &str| env.get(name).cloned())
    }

    fn issues(yaml: &str, env: &[(&str, &str)]) -> Vec<String> {
        match load(yaml, env) {
            Ok(_) => Vec::new(),
            Err(error) => error
                .issues
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message))
                .collect(),
        }
    }

    #[test]
    fn bedrock_reads_the_chain_in_the_sdks_order() {
        let yaml = "providers:\n  b: { kind: bedrock, region: us-east-1 }\nroutes: {}\n";
        let config = load(
            yaml,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
                ("AWS_SESSION_TOKEN", "env-token"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let b = &config.providers["b"];
        assert_eq!(
            b.base_url,
            "https://bedrock-runtime.us-east-1.amazonaws.com"
        );
        let Some(C::Bedrock(bedrock)) = &b.cloud else {
            panic!("no bedrock settings")
        };
        let credentials = bedrock
            .credentials
            .as_ref()
            .unwrap_or_else(|| panic!("none"));
        assert_eq!(credentials.access_key_id, "AKIDENV");
        assert_eq!(
            credentials.session_token.as_ref().map(Secret::expose),
            Some("env-token")
        );

        // A Bedrock API key in the environment comes before AWS keys.
        let config = load(
            yaml,
            &[
                ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key"),
                ("AWS_ACCESS_KEY_ID", "AKIDENV"),
                ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let b = &config.providers["b"];
        assert_eq!(
            b.api_key.as_ref().map(Secret::expose),
            Some("bedrock-api-key")
        );
        assert!(matches!(
            &b.cloud,
            Some(C::Bedrock(BedrockConfig {
                credentials: None,
                ..
            }))
        ));
    }

    #[test]
    fn bedrock_reads_a_profile_of_the_shared_credentials_file() {
        let dir = std::env::temp_dir().join(format!("bulwark-aws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n# team\n[team]\naws_access_key_id=AKIDTEAM\naws_secret_access_key = t-secret\naws_session_token = t-token\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let path = file.display().to_string();
        let config = load(
            "providers:\n  b: { kind: bedrock, region: eu-west-1, aws: { profile: team } }\nroutes: {}\n",
            &[("AWS_SHARED_CREDENTIALS_FILE", &path)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Some(C::Bedrock(bedrock)) = &config.providers["b"].cloud else {
            panic!("no bedrock settings")
        };
        let credentials = bedrock
            .credentials
            .as_ref()
            .unwrap_or_else(|| panic!("none"));
        assert_eq!(credentials.access_key_id, "AKIDTEAM");
        assert_eq!(credentials.secret_access_key.expose(), "t-secret");
        assert_eq!(
            credentials.session_token.as_ref().map(Secret::expose),
            Some("t-token")
        );
        // A profile the file lacks is reported, naming the profile, not a key.
        let found = issues(
            "providers:\n  b: { kind: bedrock, region: eu-west-1, aws: { profile: nope } }\nroutes: {}\n",
            &[("AWS_SHARED_CREDENTIALS_FILE", &path)],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("providers.b.aws: no AWS credentials found"),
            "{found:?}"
        );
        assert!(found[0].contains("`nope`"), "{found:?}");
        assert!(!found[0].contains("t-secret"), "{found:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn each_cloud_says_what_it_is_missing() {
        let found = issues(
            "providers:\n  a: { kind: azure-openai }\n  b: { kind: bedrock }\n  v: { kind: vertex }\n  o: { kind: openai, api_key: k, region: us-east-1 }\nroutes: {}\n",
            &[],
        );
        let paths: Vec<&str> = found
            .iter()
            .map(|i| i.split(": ").next().unwrap_or(""))
            .collect();
        for path in [
            "providers.a.base_url",
            "providers.a",
            "providers.b.region",
            "providers.v.region",
            "providers.v.project",
            "providers.v.credentials_file",
            "providers.o.region",
        ] {
            assert!(paths.contains(&path), "{path} missing from {found:?}");
        }
    }

    #[test]
    fn azure_takes_a_key_or_entra_and_vertex_a_service_account() {
        let config = load(
            "providers:\n  a: { kind: azure-openai, base_url: \"https://r.openai.azure.com\", api_version: 2024-10-21, entra: { tenant_id: t, client_id: c, client_secret: s } }\nroutes: {}\n",
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Some(C::Azure(azure)) = &config.providers["a"].cloud else {
            panic!("no azure settings")
        };
        assert_eq!(azure.api_version.as_deref(), Some("2024-10-21"));
        let entra = azure.entra.as_ref().unwrap_or_else(|| panic!("no entra"));
        assert_eq!(entra.authority, ENTRA_AUTHORITY);
        assert_eq!(entra.scope, AZURE_OPENAI_SCOPE);

        let dir = std::env::temp_dir().join(format!("bulwark-gcp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let file = dir.join("sa.json");
        std::fs::write(
            &file,
            serde_json::json!({
                "type": "service_account",
                "client_email": "sa@p.iam.gserviceaccount.com",
                "private_key_id": "k1",
                "private_key": std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../bulwark-sim/src/cloud/sim-test-service-account.key.pem"
                ))
                .unwrap_or_else(|e| panic!("{e}")),
                "token_uri": "http://127.0.0.1:9/token",
            })
            .to_string(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let path = file.display().to_string();
        let config = load(
            "providers:\n  v: { kind: vertex, project: my-project, region: global }\nroutes: {}\n",
            &[("GOOGLE_APPLICATION_CREDENTIALS", &path)],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let v = &config.providers["v"];
        assert_eq!(v.base_url, "https://aiplatform.googleapis.com");
        let Some(C::Vertex(vertex)) = &v.cloud else {
            panic!("no vertex settings")
        };
        assert_eq!(vertex.service_account.token_uri, "http://127.0.0.1:9/token");
        assert_eq!(vertex.project, "my-project");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_service_account_whose_key_cannot_sign_is_refused_without_quoting_it() {
        let text = r#"{"type":"service_account","client_email":"sa@p","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----\n"}"#;
        let Err(message) = service_account(text) else {
            panic!("a broken key was accepted")
        };
        assert_eq!(message, "its `private_key` is not a usable RSA key");
    }
}

#[cfg(test)]
#[path = "cloud_chain_tests.rs"]
mod chain_tests;
