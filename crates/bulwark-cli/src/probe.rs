//! `bulwark probe URL`: a health check that needs nothing but the binary,
//! so the container image carries no shell, curl or wget.

use std::process::ExitCode;
use std::time::Duration;

/// 0 when `url` answers 2xx within `timeout_secs`, 1 otherwise; says why
/// on stderr either way a person running it by hand would want to know.
pub async fn run(url: &str, timeout_secs: u64) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(timeout_secs.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("probe: cannot build an HTTP client: {error}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("probe: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("probe: {url}: {error}");
            ExitCode::FAILURE
        }
    }
}
