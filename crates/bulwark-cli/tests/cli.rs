//! The `bulwark` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn bulwark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bulwark"))
}

fn write_config(name: &str, text: &str) -> Result<std::path::PathBuf, std::io::Error> {
    let dir = std::env::temp_dir().join(format!("bulwark-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}

const BAD_CONFIG: &str = "lisen: 127.0.0.1:8080\nproviders:\n  a: { kind: anthropc }\n  b: { kind: openai, api_key: ${BULWARK_TEST_UNSET_VAR} }\nroutes:\n  r: { targets: [x/y] }\n";

#[test]
fn check_reports_every_problem_with_file_and_key() -> TestResult {
    let path = write_config("bad.yaml", BAD_CONFIG)?;
    let output = bulwark().args(["check", "--config"]).arg(&path).output()?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr)?;
    let file = path.display().to_string();
    for expected in [
        format!("{file}: lisen: unknown key"),
        format!("{file}: providers.a.kind: unknown variant `anthropc`"),
        format!(
            "{file}: providers.b.api_key: environment variable BULWARK_TEST_UNSET_VAR is not set"
        ),
        format!("{file}: routes.r.targets[0]: unknown provider `x`"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    Ok(())
}

#[test]
fn check_knows_the_stream_option() -> TestResult {
    let good = write_config(
        "stream-false.yaml",
        "providers:\n  local: { kind: openai-compatible, base_url: http://127.0.0.1:11434/v1, stream: false }\nroutes:\n  r: { targets: [local/llama3] }\n",
    )?;
    let output = bulwark().args(["check", "--config"]).arg(&good).output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bad = write_config(
        "stream-false-gemini.yaml",
        "providers:\n  g: { kind: gemini, api_key: k, stream: false }\nroutes:\n  r: { targets: [g/gemini-2.5-pro] }\n",
    )?;
    let output = bulwark().args(["check", "--config"]).arg(&bad).output()?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        stderr.contains(
            "providers.g.stream: `stream: false` is for OpenAI-format and Anthropic providers"
        ),
        "{stderr}"
    );
    Ok(())
}

/// A cloud's settings are checked at their keys, and `check` says where
/// each cloud's credentials come from without printing one.
#[test]
fn check_names_each_clouds_credentials_and_never_a_secret() -> TestResult {
    let dir = std::env::temp_dir().join(format!("bulwark-cli-aws-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let credentials = dir.join("credentials");
    std::fs::write(
        &credentials,
        "[team]\naws_access_key_id = AKIDTEAMEXAMPLE\naws_secret_access_key = aws-SECRET-value-123456\n",
    )?;
    let good = write_config(
        "clouds.yaml",
        "providers:\n  anthropic: { kind: anthropic, api_key: k }\n  bedrock: { kind: bedrock, region: us-east-1, aws: { profile: team } }\n  azure: { kind: azure-openai, base_url: \"https://r.openai.azure.com\", api_version: 2024-10-21, entra: { tenant_id: t1, client_id: c1, client_secret: entra-SECRET-654321 } }\nroutes:\n  claude: { targets: [anthropic/claude-sonnet-4-5, bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0] }\n  gpt: { targets: [azure/gpt-4o] }\n",
    )?;
    let output = bulwark()
        .args(["check", "--config"])
        .arg(&good)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("bedrock (bedrock): us-east-1, SigV4 with access key AKIDTEAMEXAMPLE from profile `team`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("azure (azure-openai): https://r.openai.azure.com, deployments, api-version 2024-10-21, Entra ID tokens for client c1 of tenant t1"),
        "{stdout}"
    );
    assert!(!stdout.contains("SECRET"), "{stdout}");

    let bad = write_config(
        "clouds-bad.yaml",
        "providers:\n  bedrock: { kind: bedrock, region: us-east-1, aws: { profile: nobody } }\n  vertex: { kind: vertex, region: Bad_Region }\nroutes: {}\n",
    )?;
    let output = bulwark()
        .args(["check", "--config"])
        .arg(&bad)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_BEARER_TOKEN_BEDROCK")
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .output()?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr)?;
    for expected in [
        "providers.bedrock.aws: no AWS credentials found",
        "providers.vertex.region: a region is lower-case letters",
        "providers.vertex.project: required for kind vertex",
        "providers.vertex.credentials_file: required for kind vertex",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("SECRET"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn check_refuses_a_route_mixing_embedding_models() -> TestResult {
    let mixed = write_config(
        "embeddings-mixed.yaml",
        "providers:\n  o: { kind: openai, api_key: k }\n  g: { kind: gemini, api_key: k }\n  a: { kind: anthropic, api_key: k }\nroutes:\n  e: { targets: [o/text-embedding-3-small, g/text-embedding-004] }\n  v: { targets: [o/voyage-embed, a/voyage-embed] }\n",
    )?;
    let output = bulwark().args(["check", "--config"]).arg(&mixed).output()?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr)?;
    for expected in [
        "routes.e.targets: an embeddings route must name one embedding model at every target",
        "routes.v.targets[1]: provider `a` is of kind `anthropic`, which serves no embeddings",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    let same = write_config(
        "embeddings-same.yaml",
        "providers:\n  o: { kind: openai, api_key: k }\n  g: { kind: gemini, api_key: k }\nroutes:\n  e: { targets: [o/text-embedding-004, g/text-embedding-004] }\n",
    )?;
    let output = bulwark().args(["check", "--config"]).arg(&same).output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn serve_refuses_an_invalid_config() -> TestResult {
    let path = write_config("bad-serve.yaml", BAD_CONFIG)?;
    let output = bulwark().args(["serve", "--config"]).arg(&path).output()?;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8(output.stdout)?.is_empty(),
        "it started listening"
    );
    Ok(())
}

#[test]
fn the_example_config_is_valid() -> TestResult {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bulwark.example.yaml");
    let output = bulwark()
        .args(["check", "--config", example])
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("OPENAI_API_KEY", "sk-test")
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8(output.stdout)?.contains("OK (5 providers, 2 routes)"));
    Ok(())
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_and_read_address(
    command: &mut Command,
    prefix: &str,
) -> Result<(Running, String), Box<dyn std::error::Error>> {
    let mut child = Running(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix(prefix)
        .ok_or(format!("unexpected first line: {line}"))?
        .to_string();
    Ok((child, address))
}

#[test]
fn serve_answers_through_a_simulated_provider() -> TestResult {
    let (_sim, sim_url) = spawn_and_read_address(
        bulwark().args(["sim", "--listen", "127.0.0.1:0"]),
        "bulwark-sim listening on ",
    )?;
    // A real SQLite file, as `serve` keeps by default, in a scratch place.
    let db = std::env::temp_dir().join(format!("bulwark-cli-test-{}.db", std::process::id()));
    let path = write_config(
        "serve.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstore: \"sqlite://{}\"\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim_url}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3] }}\n",
            db.display()
        ),
    )?;
    let (_gateway, url) = spawn_and_read_address(
        bulwark().args(["serve", "--config"]).arg(&path),
        "bulwark listening on ",
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, target, body) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{url}/v1/messages"))
            .header("content-type", "application/json")
            .body(r#"{"model":"main","max_tokens":20,"messages":[{"role":"user","content":"Hi"}]}"#)
            .send()
            .await?;
        let status = response.status().as_u16();
        let target = response
            .headers()
            .get("x-bulwark-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok::<_, reqwest::Error>((status, target, response.text().await?))
    })?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(target, "sim/llama3");
    assert!(body.contains("\"type\":\"message\""), "{body}");
    Ok(())
}

#[test]
fn demo_replays_the_outage_and_reports_with_no_wait() -> TestResult {
    let out = std::env::temp_dir().join(format!("bulwark-demo-test-{}", std::process::id()));
    let output = bulwark()
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--no-wait",
            "--speed",
            "1200",
            "--out",
        ])
        .arg(&out)
        .output()?;
    let stdout = String::from_utf8(output.stdout)?;
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Drill report: provider-outage",
        "With Bulwark",
        "Without (anthropic direct)",
        "Time to detect",
        "Status page: http://127.0.0.1:",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
    let report = std::fs::read_to_string(out.join("provider-outage.md"))?;
    assert!(report.contains("## Incidents"), "{report}");
    assert!(std::fs::metadata(out.join("provider-outage.svg"))?.len() > 1000);
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

#[test]
fn drill_asserts_fail_the_exit_code_and_bad_ones_are_refused() -> TestResult {
    let out = std::env::temp_dir().join(format!("bulwark-drill-test-{}", std::process::id()));
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/flapping.yaml");
    let run = |asserts: &[&str]| {
        let mut command = bulwark();
        command
            .args([
                "drill",
                "--scenario",
                scenario,
                "--speed",
                "300",
                "--duration",
                "2m",
                "--rps",
                "10",
                "--out",
            ])
            .arg(&out);
        for a in asserts {
            command.args(["--assert", a]);
        }
        command.output()
    };
    let passed = run(&["availability>=0", "p99<=1h"])?;
    let stdout = String::from_utf8_lossy(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    assert!(stdout.contains("PASS availability"), "{stdout}");
    let failed = run(&["p50<=1us"])?;
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stdout).contains("FAIL p50"));
    let refused = run(&["niceness>=3"])?;
    assert_ne!(refused.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("niceness"),
        "names the bad metric"
    );
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}

#[test]
fn an_open_gateway_refuses_to_listen_beyond_loopback() -> TestResult {
    let path = write_config(
        "open.yaml",
        "listen: 0.0.0.0:0\nproviders:\n  p: { kind: openai, api_key: sk-test-key }\nroutes:\n  r: { targets: [p/gpt-4o] }\n",
    )?;
    let output = bulwark().args(["serve", "--config"]).arg(&path).output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("refusing to listen on 0.0.0.0"), "{stderr}");
    assert!(stderr.contains("without client keys"), "{stderr}");
    Ok(())
}

/// Behind something that authenticates callers itself, an open gateway may
/// listen beyond loopback, but only when told so in as many words.
#[test]
fn insecure_open_lets_an_open_gateway_listen_beyond_loopback() -> TestResult {
    let path = write_config(
        "insecure-open.yaml",
        "listen: 0.0.0.0:0\nstore: \"sqlite::memory:\"\nproviders:\n  p: { kind: openai, api_key: sk-test-key }\nroutes:\n  r: { targets: [p/gpt-4o] }\n",
    )?;
    let (_gateway, url) = spawn_and_read_address(
        bulwark()
            .args(["serve", "--insecure-open", "--config"])
            .arg(&path),
        "bulwark listening on ",
    )?;
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    Ok(())
}

/// The container's health check: `bulwark probe URL` is 0 for a 2xx, and
/// 1 for anything else or nothing listening.
#[test]
fn probe_exits_zero_only_for_a_2xx() -> TestResult {
    let (_sim, sim_url) = spawn_and_read_address(
        bulwark().args(["sim", "--listen", "127.0.0.1:0"]),
        "bulwark-sim listening on ",
    )?;
    let up = bulwark()
        .args(["probe"])
        .arg(format!("{sim_url}/v1/models"))
        .output()?;
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let missing = bulwark()
        .args(["probe"])
        .arg(format!("{sim_url}/no-such-path"))
        .output()?;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let down = bulwark()
        .args(["probe", "--timeout-secs", "2"])
        .arg(format!("http://{closed}/readyz"))
        .output()?;
    assert_eq!(down.status.code(), Some(1));
    Ok(())
}

#[test]
fn incidents_list_and_show_read_the_store() -> TestResult {
    use bulwark::observe::component::ComponentState;
    use bulwark::observe::incident::{
        Impact, Incident, IncidentStatus, TimelineEntry, TimelineKind,
    };
    let db = std::env::temp_dir().join(format!("bulwark-cli-incidents-{}.db", std::process::id()));
    let url = format!("sqlite://{}", db.display());
    let incident = Incident {
        id: "inc-1795946611-00aa".into(),
        title: "Major outage of anthropic/claude-sonnet-4-5".into(),
        status: IncidentStatus::Resolved,
        worst: ComponentState::MajorOutage,
        components: vec!["anthropic/claude-sonnet-4-5".into()],
        started_at: 1_795_946_611_000,
        updated_at: 1_795_950_211_000,
        resolved_at: Some(1_795_950_211_000),
        impact: Impact {
            affected: 1200,
            saved_by_fallback: 1190,
            from_cache: 4,
            degraded: 0,
            failed: 6,
        },
        timeline: vec![TimelineEntry {
            at: 1_795_946_611_000,
            kind: TimelineKind::Detected,
            component: Some("anthropic/claude-sonnet-4-5".into()),
            status: IncidentStatus::Investigating,
            message: "detected: anthropic/claude-sonnet-4-5: major outage".into(),
        }],
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store = bulwark_store::Store::connect(&url).await?;
            store.save_incident(&incident).await?;
            store.close().await;
            Ok::<_, bulwark_store::StoreError>(())
        })?;

    let list = bulwark()
        .args(["incidents", "list", "--store", &url])
        .output()?;
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let text = String::from_utf8(list.stdout)?;
    assert!(text.contains("inc-1795946611-00aa"), "{text}");
    assert!(
        text.contains("resolved") && text.contains("1h00m") && text.contains("1200"),
        "{text}"
    );

    let show = bulwark()
        .args([
            "incidents",
            "show",
            "inc-1795946611-00aa",
            "--format",
            "md",
            "--store",
            &url,
        ])
        .output()?;
    assert!(show.status.success());
    let review = String::from_utf8(show.stdout)?;
    assert!(review.starts_with('#'), "{review}");
    assert!(
        review.contains("Timeline") && review.contains("Saved by fallback"),
        "{review}"
    );

    let missing = bulwark()
        .args(["incidents", "show", "nope", "--store", &url])
        .output()?;
    assert_eq!(missing.status.code(), Some(1));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}

/// `docker stop`, systemd and Kubernetes stop a process with SIGTERM: the
/// gateway drains, flushes its request log, and exits 0 (before, SIGTERM
/// killed it outright, losing the requests not yet written).
#[test]
fn sigterm_drains_flushes_the_request_log_and_exits_zero() -> TestResult {
    let (_sim, sim_url) = spawn_and_read_address(
        bulwark().args(["sim", "--listen", "127.0.0.1:0"]),
        "bulwark-sim listening on ",
    )?;
    let db = std::env::temp_dir().join(format!("bulwark-cli-sigterm-{}.db", std::process::id()));
    let store = format!("sqlite://{}", db.display());
    let path = write_config(
        "sigterm.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstore: \"{store}\"\nshutdown_grace: 5s\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim_url}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3] }}\n"
        ),
    )?;
    let (mut gateway, url) = spawn_and_read_address(
        bulwark().args(["serve", "--config"]).arg(&path),
        "bulwark listening on ",
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(r#"{"model":"main","messages":[{"role":"user","content":"Hi"}]}"#)
            .send()
            .await
            .map(|r| r.status().as_u16())
    })?;
    assert_eq!(status, 200);

    let pid = gateway.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = gateway.0.try_wait()? {
            exit = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exit = exit.ok_or("still running 10 s after SIGTERM")?;
    assert!(exit.success(), "exit status after SIGTERM: {exit}");

    let logged = runtime.block_on(async {
        let store = bulwark_store::Store::connect(&store).await?;
        let logged = store.requests_between(0, i64::MAX, None).await;
        store.close().await;
        logged
    })?;
    assert_eq!(logged.len(), 1, "the request log after SIGTERM: {logged:?}");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(())
}

/// `--log-format json`: every line `serve` writes, on stdout and stderr, is
/// a JSON object, and the line a request writes as it ends carries its id.
#[test]
fn serve_logs_json_lines_carrying_the_request_id() -> TestResult {
    let (_sim, sim_url) = spawn_and_read_address(
        bulwark().args(["sim", "--listen", "127.0.0.1:0"]),
        "bulwark-sim listening on ",
    )?;
    let path = write_config(
        "json-logs.yaml",
        &format!(
            "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim_url}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3] }}\n"
        ),
    )?;
    let stderr_path = path.with_extension("stderr");
    let mut gateway = Running(
        bulwark()
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()?,
    );
    let mut stdout = BufReader::new(gateway.0.stdout.take().ok_or("no stdout")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let announced: serde_json::Value = serde_json::from_str(&first)?;
    let url = announced["address"]
        .as_str()
        .ok_or(format!("no address in {first}"))?
        .to_string();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, returned) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-request-id", "json-log-request-7")
            .body(r#"{"model":"main","messages":[{"role":"user","content":"Hi"}]}"#)
            .send()
            .await?;
        let status = response.status().as_u16();
        let returned = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        response.bytes().await?;
        Ok::<_, reqwest::Error>((status, returned))
    })?;
    assert_eq!((status, returned.as_str()), (200, "json-log-request-7"));

    let pid = gateway.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    let mut exit = None;
    for _ in 0..200 {
        if let Some(status) = gateway.0.try_wait()? {
            exit = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exit = exit.ok_or("still running 10 s after SIGTERM")?;
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    let stderr = std::fs::read_to_string(&stderr_path)?;

    let mut lines = 0;
    let mut with_id = 0;
    for line in rest.lines().chain(stderr.lines()) {
        let parsed: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        lines += 1;
        let spans = parsed["spans"].as_array().into_iter().flatten();
        if spans
            .chain([&parsed["span"]])
            .any(|span| span["bulwark.request_id"] == "json-log-request-7")
        {
            with_id += 1;
        }
    }
    assert!(lines > 0, "serve wrote no log lines");
    // The request's own line as it ends, and its attempt's.
    assert!(
        with_id >= 2,
        "too few lines carry the request id:\n{rest}{stderr}"
    );
    Ok(())
}

/// `BULWARK_LOG_FORMAT=json` does what `--log-format json` does, for
/// deployments that set the environment rather than the command line.
#[test]
fn the_log_format_can_come_from_the_environment() -> TestResult {
    let path = write_config(
        "json-env.yaml",
        "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nproviders:\n  p: { kind: openai-compatible, base_url: \"http://127.0.0.1:9/v1\" }\nroutes:\n  main: { targets: [p/m] }\n",
    )?;
    let mut gateway = Running(
        bulwark()
            .env("BULWARK_LOG_FORMAT", "json")
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let mut first = String::new();
    BufReader::new(gateway.0.stdout.take().ok_or("no stdout")?).read_line(&mut first)?;
    let announced: serde_json::Value =
        serde_json::from_str(&first).map_err(|e| format!("not JSON ({e}): {first}"))?;
    assert!(
        announced["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("http://127.0.0.1:")),
        "{announced}"
    );
    Ok(())
}

/// `bulwark serve` reloads the file it was started with on SIGHUP and on
/// `POST /admin/reload`; a broken file is refused and the routes before it
/// keep answering.
#[test]
fn sighup_and_admin_reload_pick_up_the_rewritten_config() -> TestResult {
    let (_sim, sim_url) = spawn_and_read_address(
        bulwark().args(["sim", "--listen", "127.0.0.1:0"]),
        "bulwark-sim listening on ",
    )?;
    let admin = "admin-secret-0123456789";
    let config = |routes: &str| {
        format!(
            "listen: 127.0.0.1:0\nstore: \"sqlite::memory:\"\nadmin_key: {admin}\nproviders:\n  sim: {{ kind: openai-compatible, base_url: \"{sim_url}/v1\" }}\nroutes:\n  main: {{ targets: [sim/llama3] }}\n{routes}"
        )
    };
    let path = write_config("reload.yaml", &config(""))?;
    let (gateway, url) = spawn_and_read_address(
        bulwark().args(["serve", "--config"]).arg(&path),
        "bulwark listening on ",
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let ask = |model: &str| {
        let request = http
            .post(format!("{url}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(format!(
                r#"{{"model":"{model}","messages":[{{"role":"user","content":"Hi"}}]}}"#
            ));
        runtime.block_on(async { request.send().await.map(|r| r.status().as_u16()) })
    };
    assert_eq!(ask("second")?, 404);

    std::fs::write(&path, config("  second: { targets: [sim/llama3] }\n"))?;
    let pid = gateway.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()?
            .success()
    );
    let mut status = 0;
    for _ in 0..400 {
        status = ask("second")?;
        if status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(status, 200, "the route added before SIGHUP never served");

    std::fs::write(
        &path,
        config("  second: { targets: [sim/llama3] }\n  third: { targets: [sim/llama3] }\n"),
    )?;
    let reload = |authorized: bool| {
        let mut request = http.post(format!("{url}/admin/reload"));
        if authorized {
            request = request.bearer_auth(admin);
        }
        runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
    };
    assert_eq!(reload(false)?.0, 401);
    let (status, body) = reload(true)?;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""added":["third"]"#), "{body}");
    assert_eq!(ask("third")?, 200);

    std::fs::write(
        &path,
        "providers:\n  sim: { kind: nope }\nroutes:\n  main: { targets: [x/y] }\n",
    )?;
    let (status, body) = reload(true)?;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("nope"), "{body}");
    assert_eq!(ask("main")?, 200);
    assert_eq!(ask("third")?, 200);
    Ok(())
}
