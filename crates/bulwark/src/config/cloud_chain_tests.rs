//! The AWS credential chain's order, case by case: explicit settings,
//! then the environment, then the shared credentials file at a profile.

use std::path::PathBuf;

use super::tests::load;
use crate::config::{AwsCredentials, CloudConfig, Secret};

/// The signing credentials provider `b` ends up with.
fn credentials(yaml: &str, env: &[(&str, &str)]) -> AwsCredentials {
    let config = load(yaml, env).unwrap_or_else(|e| panic!("{e}"));
    match &config.providers["b"].cloud {
        Some(CloudConfig::Bedrock(bedrock)) => bedrock
            .credentials
            .clone()
            .unwrap_or_else(|| panic!("no signing credentials")),
        other => panic!("not bedrock: {other:?}"),
    }
}

/// A directory with `.aws/credentials` holding profiles `default` and `team`.
fn home(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("bulwark-aws-{name}-{}", std::process::id()));
    let aws = dir.join(".aws");
    std::fs::create_dir_all(&aws).unwrap_or_else(|e| panic!("{e}"));
    let file = aws.join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = team-secret\naws_session_token = team-token\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let path = file.display().to_string();
    (dir, path)
}

const PLAIN: &str = "providers:\n  b: { kind: bedrock, region: us-east-1 }\nroutes: {}\n";

#[test]
fn the_home_file_and_aws_profile_are_the_last_resort() {
    let (dir, _) = home("home");
    let home_dir = dir.display().to_string();
    let found = credentials(PLAIN, &[("HOME", &home_dir)]);
    assert_eq!(found.access_key_id, "AKIDDEFAULT");
    assert!(found.session_token.is_none());
    let found = credentials(PLAIN, &[("HOME", &home_dir), ("AWS_PROFILE", "team")]);
    assert_eq!(found.access_key_id, "AKIDTEAM");
    assert_eq!(
        found.session_token.as_ref().map(Secret::expose),
        Some("team-token")
    );
    // The environment's keys come before any file.
    let found = credentials(
        PLAIN,
        &[
            ("HOME", &home_dir),
            ("AWS_ACCESS_KEY_ID", "AKIDENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ],
    );
    assert_eq!(found.access_key_id, "AKIDENV");
    assert!(found.session_token.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn settings_in_the_config_win_over_the_environment() {
    let (dir, file) = home("explicit");
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
        ("AWS_BEARER_TOKEN_BEDROCK", "env-api-key"),
        ("AWS_PROFILE", "default"),
    ];
    let keys = credentials(
        "providers:\n  b: { kind: bedrock, region: us-east-1, aws: { access_key_id: AKIDYAML, secret_access_key: yaml-secret, session_token: yaml-token } }\nroutes: {}\n",
        &env,
    );
    assert_eq!(keys.access_key_id, "AKIDYAML");
    assert_eq!(keys.secret_access_key.expose(), "yaml-secret");
    assert_eq!(
        keys.session_token.as_ref().map(Secret::expose),
        Some("yaml-token")
    );
    // A profile (and file) named in the config, as the CLI's `--profile`.
    let team = credentials(
        &format!(
            "providers:\n  b: {{ kind: bedrock, region: us-east-1, aws: {{ profile: team, credentials_file: \"{file}\" }} }}\nroutes: {{}}\n"
        ),
        &env,
    );
    assert_eq!(team.access_key_id, "AKIDTEAM");
    assert_eq!(team.secret_access_key.expose(), "team-secret");
    assert!(
        team.source.starts_with("profile `team` of "),
        "{}",
        team.source
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn half_a_key_pair_is_reported_without_the_secret() {
    let error = load(
        "providers:\n  b: { kind: bedrock, region: us-east-1, aws: { secret_access_key: lonely-secret } }\nroutes: {}\n",
        &[],
    )
    .err()
    .unwrap_or_else(|| panic!("half a pair was accepted"));
    let text = format!("{error}");
    assert!(text.contains("providers.b.aws"), "{text}");
    assert!(text.contains("go together"), "{text}");
    assert!(!text.contains("lonely-secret"), "{text}");
}
