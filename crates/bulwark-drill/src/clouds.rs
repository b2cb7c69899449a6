//! Drilling a config with cloud providers (`bedrock`, `vertex`,
//! `azure-openai`): each one's simulator checks the credentials the config
//! gives, as the cloud would (SigV4 signatures, service-account tokens,
//! keys), and the config's token endpoints point at the simulator.

use bulwark::config::{CloudConfig, ProviderConfig};
use bulwark_sim::{AzureSimConfig, BedrockSimConfig, SimConfig, VertexSimConfig};

/// Before the provider's simulator starts: what it accepts, from the
/// config's credentials. A provider of another kind is left alone.
pub(crate) fn expect_credentials(settings: &ProviderConfig, sim: &mut SimConfig) {
    match &settings.cloud {
        Some(CloudConfig::Bedrock(bedrock)) => {
            let credentials = bedrock.credentials.as_ref();
            sim.bedrock = Some(BedrockSimConfig {
                access_key_id: credentials.map_or_else(String::new, |c| c.access_key_id.clone()),
                secret_access_key: credentials
                    .map_or_else(String::new, |c| c.secret_access_key.expose().to_string()),
                session_token: credentials
                    .and_then(|c| c.session_token.as_ref())
                    .map(|token| token.expose().to_string()),
                api_key: settings
                    .api_key
                    .as_ref()
                    .map(|key| key.expose().to_string()),
                region: bedrock.region.clone(),
            });
        }
        Some(CloudConfig::Vertex(vertex)) => {
            sim.vertex = Some(VertexSimConfig {
                project: vertex.project.clone(),
                region: vertex.region.clone(),
                client_email: vertex.service_account.client_email.clone(),
                ..VertexSimConfig::default()
            });
        }
        Some(CloudConfig::Azure(azure)) => {
            let entra = azure.entra.as_ref();
            sim.azure = Some(AzureSimConfig {
                api_key: settings
                    .api_key
                    .as_ref()
                    .map(|key| key.expose().to_string()),
                tenant_id: entra.map_or_else(String::new, |e| e.tenant_id.clone()),
                client_id: entra.map_or_else(String::new, |e| e.client_id.clone()),
                client_secret: entra
                    .map_or_else(String::new, |e| e.client_secret.expose().to_string()),
                ..AzureSimConfig::default()
            });
        }
        None => {}
    }
}

/// After it started: the config's token endpoints are the simulator's.
pub(crate) fn point_at(settings: &mut ProviderConfig, sim_url: &str) {
    match &mut settings.cloud {
        Some(CloudConfig::Vertex(vertex)) => {
            vertex.service_account.token_uri = format!("{sim_url}/token");
        }
        Some(CloudConfig::Azure(azure)) => {
            if let Some(entra) = azure.entra.as_mut() {
                entra.authority = sim_url.to_string();
            }
        }
        _ => {}
    }
}

/// The simulator's test service account as a key file, for a config's
/// `credentials_file: ${BULWARK_SIM_SERVICE_ACCOUNT}`. Its key is
/// TEST-ONLY; the drill points its `token_uri` at the simulator.
pub fn sim_service_account_json() -> String {
    bulwark_sim::Sim::new(SimConfig::default()).service_account_json("http://127.0.0.1:9/token")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn providers(yaml: &str, service_account: &str) -> bulwark::config::Config {
        let file = std::env::temp_dir().join(format!(
            "bulwark-drill-clouds-{}-{:x}.json",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&file, service_account).unwrap_or_else(|e| panic!("{e}"));
        let path = file.display().to_string();
        let config = bulwark::config::Config::from_yaml(yaml, "t.yaml", &|name: &str| {
            (name == "SA").then(|| path.clone())
        });
        let _ = std::fs::remove_file(&file);
        config.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn each_clouds_simulator_checks_the_configs_credentials_and_serves_its_tokens() {
        let config = providers(
            "providers:\n  b: { kind: bedrock, region: eu-west-1, aws: { access_key_id: AKID, secret_access_key: s3cret, session_token: tok } }\n  v: { kind: vertex, project: p1, region: us-east5, credentials_file: ${SA} }\n  a: { kind: azure-openai, base_url: \"https://r.openai.azure.com\", entra: { tenant_id: t, client_id: c, client_secret: cs } }\n  o: { kind: openai, api_key: k }\nroutes: {}\n",
            &sim_service_account_json(),
        );
        let mut expected = Vec::new();
        for (name, settings) in &config.providers {
            let mut sim = SimConfig::default();
            expect_credentials(settings, &mut sim);
            let mut settings = settings.clone();
            point_at(&mut settings, "http://127.0.0.1:1");
            expected.push((name.as_str(), sim, settings));
        }
        for (name, sim, settings) in expected {
            match name {
                "b" => {
                    let bedrock = sim.bedrock.unwrap_or_else(|| panic!("no bedrock"));
                    assert_eq!(bedrock.access_key_id, "AKID");
                    assert_eq!(bedrock.secret_access_key, "s3cret");
                    assert_eq!(bedrock.session_token.as_deref(), Some("tok"));
                    assert_eq!(bedrock.region, "eu-west-1");
                }
                "v" => {
                    let vertex = sim.vertex.unwrap_or_else(|| panic!("no vertex"));
                    assert_eq!(
                        (vertex.project.as_str(), vertex.region.as_str()),
                        ("p1", "us-east5")
                    );
                    let Some(CloudConfig::Vertex(config)) = &settings.cloud else {
                        panic!("no vertex config")
                    };
                    assert_eq!(vertex.client_email, config.service_account.client_email);
                    assert_eq!(config.service_account.token_uri, "http://127.0.0.1:1/token");
                }
                "a" => {
                    let azure = sim.azure.unwrap_or_else(|| panic!("no azure"));
                    assert_eq!(
                        (
                            azure.tenant_id.as_str(),
                            azure.client_id.as_str(),
                            azure.client_secret.as_str()
                        ),
                        ("t", "c", "cs")
                    );
                    let Some(CloudConfig::Azure(config)) = &settings.cloud else {
                        panic!("no azure config")
                    };
                    let entra = config.entra.as_ref().unwrap_or_else(|| panic!("no entra"));
                    assert_eq!(entra.authority, "http://127.0.0.1:1");
                }
                _ => assert!(sim.bedrock.is_none() && sim.vertex.is_none() && sim.azure.is_none()),
            }
        }
    }
}
