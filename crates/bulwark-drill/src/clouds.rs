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
