//! `bulwark drill`: replay an incident against a config and report what
//! users would have seen, with and without Bulwark in the path.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bulwark_drill::report::{self, Assertion, Report};
use bulwark_drill::run::{DrillOptions, DrillRun, Progress};
use bulwark_drill::{Scenario, Speed};
use bulwark_gateway::GatewayConfig;

/// The demo's gateway config, with placeholder addresses: a drill points
/// every provider at its simulator anyway.
pub const DEMO_CONFIG: &str = include_str!("demo.yaml");

pub struct DrillArgs {
    pub scenario: PathBuf,
    pub config: Option<PathBuf>,
    pub speed: Option<f64>,
    pub rps: Option<f64>,
    pub duration: Option<String>,
    pub route: Option<String>,
    pub out: PathBuf,
    pub store: Option<String>,
    pub asserts: Vec<String>,
    pub listen: String,
    pub instances: usize,
    /// Replaces the config's `redis:` (its URL; the other settings default).
    pub redis: Option<String>,
}

/// Runs the drill, prints and writes the report; `false` when an
/// assertion failed.
pub async fn drill(args: DrillArgs) -> anyhow::Result<bool> {
    let asserts = args
        .asserts
        .iter()
        .map(|a| {
            a.parse::<Assertion>()
                .map_err(|e| anyhow::anyhow!("--assert {a}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let scenario = Scenario::load(&args.scenario).map_err(problems)?;
    let (mut config, config_name) = load_config(args.config.as_deref())?;
    if let Some(url) = &args.redis {
        let shared = bulwark::config::shared::SharedConfig::from_url(url)
            .map_err(|e| anyhow::anyhow!("--redis: {e}"))?;
        config.engine.shared = Some(shared);
    }
    let speed = args.speed.or(scenario.speed).unwrap_or(60.0);
    let duration = args
        .duration
        .as_deref()
        .map(|d| {
            bulwark_drill::parse_duration(d).map_err(|e| anyhow::anyhow!("--duration {d}: {e}"))
        })
        .transpose()?;
    let run = run_drill(DrillOptions {
        scenario,
        config,
        config_name,
        route: args.route,
        speed: Speed::new(speed).map_err(|e| anyhow::anyhow!("--speed: {e}"))?,
        rps: args.rps,
        duration,
        store: args.store,
        listen: args.listen,
        seed: fastrand::u64(..),
        instances: args.instances,
    })
    .await?;
    let report = write_report(&run, &args.out)?;
    Ok(check(&report, &asserts))
}

/// A config's or scenario's problems, one per line, as an error.
pub fn problems(error: bulwark::config::ConfigError) -> anyhow::Error {
    anyhow::anyhow!("{}", error.to_string().trim_end())
}

/// The variable a drilled config names for the simulator's service account.
const SIM_SERVICE_ACCOUNT: &str = "BULWARK_SIM_SERVICE_ACCOUNT";

/// Writes the simulator's test service account into a new directory only
/// this user can read (the key is a test key, but a key file is a key
/// file), created afresh so that nothing planted there is followed. The
/// config reads the key when loaded; the directory is removed then.
fn write_sim_service_account() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = std::env::temp_dir().join(format!(
        "bulwark-drill-{}-{:016x}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let path = dir.join("sim-service-account.json");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(bulwark_drill::sim_service_account_json().as_bytes())?;
    Ok(path)
}

/// The config to drill, and how to name it in the report.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<(GatewayConfig, String)> {
    match path {
        Some(path) => {
            // A drilled config may give a Vertex provider the simulator's
            // own service account (its key is the simulator's, TEST-ONLY):
            // written out only when the config names the variable and the
            // environment does not set it.
            let text = bulwark::config::read_file(path).map_err(problems)?;
            let service_account = match text.contains(SIM_SERVICE_ACCOUNT)
                && std::env::var_os(SIM_SERVICE_ACCOUNT).is_none()
            {
                true => Some(write_sim_service_account()?),
                false => None,
            };
            let env = |name: &str| match (name, &service_account) {
                (SIM_SERVICE_ACCOUNT, Some(file)) => Some(file.display().to_string()),
                _ => std::env::var(name).ok(),
            };
            let config = GatewayConfig::from_yaml(&text, &path.display().to_string(), &env);
            if let Some(dir) = service_account.as_deref().and_then(Path::parent) {
                let _ = std::fs::remove_dir_all(dir);
            }
            Ok((config.map_err(problems)?, path.display().to_string()))
        }
        None => {
            let placeholder = |name: &str| match name {
                "DEMO_LISTEN" => Some("127.0.0.1:0".to_string()),
                _ => Some("http://127.0.0.1:9".to_string()),
            };
            let config = GatewayConfig::from_yaml(DEMO_CONFIG, "the demo config", &placeholder)
                .map_err(problems)?;
            Ok((config, "the demo config".to_string()))
        }
    }
}

/// Runs with a progress line on stderr.
pub async fn run_drill(options: DrillOptions) -> anyhow::Result<DrillRun> {
    let name = options.scenario.name.clone();
    let speed = options.speed.factor();
    eprintln!(
        "drill `{name}` against {} at {speed}x ({} of scenario time)",
        options.config_name,
        bulwark_drill::format_duration(
            options
                .duration
                .unwrap_or(options.scenario.duration)
                .min(options.scenario.duration)
        ),
    );
    let terminal = std::io::stderr().is_terminal();
    let last_tenth = std::sync::atomic::AtomicU64::new(u64::MAX);
    let run = bulwark_drill::run::run(options, |p| show_progress(p, terminal, &last_tenth))
        .await
        .context("the drill could not run")?;
    if terminal {
        eprintln!();
    }
    Ok(run)
}

fn show_progress(p: &Progress, terminal: bool, last_tenth: &std::sync::atomic::AtomicU64) {
    let share = if p.total.is_zero() {
        1.0
    } else {
        (p.elapsed.as_secs_f64() / p.total.as_secs_f64()).min(1.0)
    };
    let rate = |ok: u64, done: u64| {
        if done == 0 {
            "  -  ".to_string()
        } else {
            format!("{:5.1} %", ok as f64 * 100.0 / done as f64)
        }
    };
    let filled = (share * 30.0) as usize;
    let line = format!(
        "[{}{}] {:>7}/{:<7} {:<24} sent {:>5}  bulwark {}  direct {}",
        "#".repeat(filled),
        " ".repeat(30 - filled),
        bulwark_drill::format_duration(round(p.elapsed)),
        bulwark_drill::format_duration(round(p.total)),
        truncate(&p.phase, 24),
        p.sent,
        rate(p.bulwark_ok, p.bulwark_done),
        rate(p.direct_ok, p.direct_done),
    );
    let mut err = std::io::stderr().lock();
    if terminal {
        let _ = write!(err, "\r{line}");
    } else {
        // Not a terminal (CI logs): a line per tenth of the way.
        let tenth = (share * 10.0) as u64;
        if last_tenth.swap(tenth, std::sync::atomic::Ordering::Relaxed) != tenth {
            let _ = writeln!(err, "{line}");
        }
    }
    let _ = err.flush();
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars()
            .take(max - 1)
            .chain(std::iter::once('…'))
            .collect()
    }
}

/// Prints the table and writes `<out>/<scenario>.md` and `.svg`.
pub fn write_report(run: &DrillRun, out: &Path) -> anyhow::Result<Report> {
    let data = &run.data;
    let report = Report::from_data(data);
    println!("{}", report::table(&report, data));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let stem = sanitize(&data.scenario);
    let svg_name = format!("{stem}.svg");
    let svg = out.join(&svg_name);
    let md = out.join(format!("{stem}.md"));
    std::fs::write(&svg, report::chart_svg(data))
        .with_context(|| format!("cannot write {}", svg.display()))?;
    std::fs::write(&md, report::markdown(&report, data, Some(&svg_name)))
        .with_context(|| format!("cannot write {}", md.display()))?;
    let json = out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(data)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    println!(
        "report: {} (chart {}, raw data {})",
        md.display(),
        svg.display(),
        json.display()
    );
    if let Err(problem) = report.reconciles() {
        eprintln!("warning: the report does not reconcile: {problem}");
    }
    Ok(report)
}

fn check(report: &Report, asserts: &[Assertion]) -> bool {
    let mut all = true;
    for assertion in asserts {
        match assertion.check(report) {
            Ok(line) => println!("assert ok:     {line}"),
            Err(line) => {
                println!("assert FAILED: {line}");
                all = false;
            }
        }
    }
    all
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

pub struct RecordArgs {
    pub since: String,
    pub out: PathBuf,
    pub config: Option<PathBuf>,
    pub store: Option<String>,
    pub speed: f64,
    pub name: Option<String>,
}

/// `bulwark drill record`: the request log since `--since`, as a scenario.
pub async fn record(args: RecordArgs) -> anyhow::Result<()> {
    let (config, _) = load_config(args.config.as_deref())?;
    let store_url = args.store.unwrap_or_else(|| config.observe.store.clone());
    let since = bulwark_drill::parse_duration(&args.since)
        .map_err(|e| anyhow::anyhow!("--since {}: {e}", args.since))?;
    let store = bulwark_store::Store::connect(&store_url)
        .await
        .with_context(|| "cannot open the store to record from")?;
    let now = bulwark::observe::unix_ms_now();
    let from = now - since.as_millis() as i64;
    let rows = store.requests_between(from, now + 1, None).await?;
    let name = args.name.unwrap_or_else(|| "recorded".to_string());
    let yaml = bulwark_drill::record::record(&rows, &config.engine, args.speed, &name)?;
    std::fs::write(&args.out, &yaml)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "recorded {} requests from {} into {}",
        rows.len(),
        store.backend(),
        args.out.display()
    );
    Ok(())
}
