//! The `bulwark` binary: serve the gateway, check a config, run a simulated
//! provider, or watch the demo.

mod demo;
mod drill;
mod incidents;
mod otel;
mod probe;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bulwark_gateway::GatewayConfig;

/// mimalloc rather than glibc's allocator: glibc keeps a freed arena per
/// thread, so a burst of large requests decoded on several tokio workers
/// left the process at its peak for good (1.9 GB after one 33 MB body);
/// mimalloc returns freed pages to the system and reuses them across
/// threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "bulwark", version, about = "A resilient gateway for LLM APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How `serve` writes its logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line, for machines.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short, default_value = "bulwark.yaml", env = "BULWARK_CONFIG")]
        config: PathBuf,
        /// Overrides the config's `listen` address.
        #[arg(long)]
        listen: Option<String>,
        /// `json` writes one JSON object a line (log lines, the
        /// `listening` announcement, and a line per request as it ends),
        /// for log collectors.
        #[arg(
            long,
            value_enum,
            default_value_t = LogFormat::Text,
            env = "BULWARK_LOG_FORMAT"
        )]
        log_format: LogFormat,
        /// Listen beyond loopback without client keys: anyone who reaches
        /// the port spends the provider keys. Only behind something that
        /// authenticates callers itself.
        #[arg(long, env = "BULWARK_INSECURE_OPEN")]
        insecure_open: bool,
        /// Reload the config whenever the file's content changes (checked
        /// every second). SIGHUP and `POST /admin/reload` reload it too.
        #[arg(long, env = "BULWARK_WATCH_CONFIG")]
        watch_config: bool,
    },
    /// Exit 0 when a URL answers 2xx within a few seconds (a container's
    /// health check: `bulwark probe http://127.0.0.1:8080/readyz`).
    Probe {
        #[arg(default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Validate a config file and report every problem in it.
    Check {
        #[arg(long, short, default_value = "bulwark.yaml", env = "BULWARK_CONFIG")]
        config: PathBuf,
    },
    /// Run a simulated provider speaking the OpenAI, Anthropic and Gemini formats.
    Sim {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: String,
        /// A YAML scenario: latency, models and fault rules.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// List incidents, or show one (as a post-incident review with `--format md`).
    Incidents {
        #[command(subcommand)]
        action: IncidentsAction,
        #[arg(
            long,
            short,
            default_value = "bulwark.yaml",
            env = "BULWARK_CONFIG",
            global = true
        )]
        config: PathBuf,
        /// The store to read, instead of the config's `store`.
        #[arg(long, global = true)]
        store: Option<String>,
    },
    /// Replay a three-hour provider outage in two minutes through the
    /// gateway, print the report, and keep the status page up.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Scenario seconds per real second (120 plays the 4 h scenario in 2 min).
        #[arg(long, default_value_t = 120.0)]
        speed: f64,
        /// Where the report goes.
        #[arg(long, default_value = "drill-reports")]
        out: PathBuf,
        /// Exit after the report instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
    },
    /// Replay an incident scenario against a config and report what users
    /// would have seen, with and without Bulwark.
    Drill(Box<DrillCli>),
}

/// `bulwark drill`'s flags (boxed: they make the command enum large).
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct DrillCli {
    #[command(subcommand)]
    record: Option<DrillCommand>,
    /// The scenario file (see scenarios/ and crates/bulwark-drill/SCENARIOS.md).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// The gateway config to drill; the demo config by default.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Scenario seconds per real second (the scenario's own `speed`, else 60).
    #[arg(long)]
    speed: Option<f64>,
    /// Requests per real second (the scenario's load shape is scaled to it).
    #[arg(long)]
    rps: Option<f64>,
    /// Stop after this much scenario time, e.g. 90m.
    #[arg(long)]
    duration: Option<String>,
    /// The route to load; the first route using the primary by default.
    #[arg(long)]
    route: Option<String>,
    /// Where the report goes.
    #[arg(long, default_value = "drill-reports")]
    out: PathBuf,
    /// Keep the drill's request log here (e.g. sqlite://drill.db) to record it later.
    #[arg(long)]
    store: Option<String>,
    /// Fail (exit 1) unless this holds, e.g. `availability>=99.9`, `p99<=10s`. Repeatable.
    #[arg(long = "assert")]
    asserts: Vec<String>,
    /// Run the gateway as this many instances sharing the config's `redis:`,
    /// the load spread over them as a load balancer would.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    instances: u16,
    /// The Redis the instances share (e.g. redis://127.0.0.1:6379/0), in
    /// place of the config's `redis:`; the drill uses keys of its own.
    #[arg(long)]
    redis: Option<String>,
}

#[derive(Subcommand)]
enum DrillCommand {
    /// Turn what a request log saw into a scenario, to replay it later.
    Record {
        /// How far back to look, e.g. 2h.
        #[arg(long, default_value = "1h")]
        since: String,
        /// The scenario file to write.
        #[arg(long)]
        out: PathBuf,
        /// The config whose providers the log's targets belong to (and whose
        /// `store` is read); the demo config by default.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The store to read, instead of the config's.
        #[arg(long)]
        store: Option<String>,
        /// The speed the log was recorded at (a drill's `--speed`); 1 for real traffic.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// The recorded scenario's name.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Subcommand)]
enum IncidentsAction {
    /// The latest incidents, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One incident: JSON, or Markdown with `--format md`.
    Show {
        id: String,
        #[arg(long, default_value = "json", value_parser = ["json", "md"])]
        format: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` installs its subscriber once it knows whether traces go out.
    if !matches!(cli.command, Command::Serve { .. }) {
        otel::init_subscriber(log_filter(&cli.command), LogFormat::Text, None);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `RUST_LOG`, else the command's default.
fn log_filter(command: &Command) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(command)))
}

/// The demo narrates on stdout; per-attempt warnings would drown it out.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Demo { .. }
        | Command::Drill(_)
        | Command::Incidents { .. }
        | Command::Probe { .. } => "error",
        _ => "info",
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    let filter = log_filter(&command);
    match command {
        Command::Serve {
            config: path,
            listen,
            log_format,
            insecure_open,
            watch_config,
        } => {
            // First of all: from here on a SIGHUP (a `systemctl reload`
            // while the store connects) waits for the handler instead of
            // ending the process.
            let hangups = hangup_signal();
            // What the running config is loaded from, for the watcher to
            // tell an edit made while the gateway starts.
            let loaded_from = std::fs::read(&path).ok();
            let config = match GatewayConfig::load(&path) {
                Ok(config) => config,
                Err(e) => {
                    eprint!("{e}");
                    eprintln!(
                        "bulwark: not starting until the config is fixed (`bulwark check --config {}` lists the problems)",
                        path.display()
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let addr = listen.unwrap_or_else(|| config.listen.to_string());
            let (traces, layer) = otel::Traces::start(config.otel.as_ref())?;
            otel::init_subscriber(filter, log_format, layer);
            if let Some(otel) = &config.otel {
                tracing::info!(
                    "exporting traces to {} (sample ratio {})",
                    otel.traces_url(),
                    otel.sample_ratio
                );
            }
            let reload = Reload {
                path,
                loaded_from,
                watch: watch_config,
                hangups,
            };
            let served = serve(&config, &addr, log_format, insecure_open, reload).await;
            traces.shutdown().await;
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { url, timeout_secs } => Ok(probe::run(&url, timeout_secs).await),
        Command::Check { config: path } => match GatewayConfig::load(&path) {
            Ok(config) => {
                println!(
                    "{}: OK ({} provider{}, {} route{})",
                    path.display(),
                    config.engine.providers.len(),
                    plural(config.engine.providers.len()),
                    config.engine.routes.len(),
                    plural(config.engine.routes.len())
                );
                // Where each cloud's credentials come from, so a wrong
                // profile or file shows before the first request.
                for (name, provider) in &config.engine.providers {
                    if let Some(cloud) = &provider.cloud {
                        println!(
                            "  {name} ({}): {}",
                            provider.kind.name(),
                            cloud.describe(&provider.base_url)
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprint!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Sim { listen, scenario } => {
            let config = match scenario {
                Some(path) => bulwark_sim::load_scenario(&path)?,
                None => bulwark_sim::SimConfig::default(),
            };
            bulwark_sim::run(&listen, config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Incidents {
            action,
            config,
            store,
        } => {
            let store = match store {
                Some(url) => url,
                None => match GatewayConfig::load(&config) {
                    Ok(config) => config.observe.store,
                    Err(e) => {
                        eprint!("{e}");
                        eprintln!("bulwark: pass --store URL to read a store without a config");
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            match action {
                IncidentsAction::List { limit } => {
                    incidents::list(&store, limit).await?;
                    Ok(ExitCode::SUCCESS)
                }
                IncidentsAction::Show { id, format } => {
                    let found = incidents::show(&store, &id, format == "md").await?;
                    Ok(if found {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    })
                }
            }
        }
        Command::Demo {
            listen,
            speed,
            out,
            no_wait,
        } => {
            demo::run(&listen, speed, no_wait, &out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Drill(drill) => match *drill {
            DrillCli {
                record:
                    Some(DrillCommand::Record {
                        since,
                        out,
                        config,
                        store,
                        speed,
                        name,
                    }),
                ..
            } => {
                drill::record(drill::RecordArgs {
                    since,
                    out,
                    config,
                    store,
                    speed,
                    name,
                })
                .await?;
                Ok(ExitCode::SUCCESS)
            }
            DrillCli {
                record: None,
                scenario,
                config,
                speed,
                rps,
                duration,
                route,
                out,
                store,
                asserts,
                instances,
                redis,
            } => {
                let Some(scenario) = scenario else {
                    anyhow::bail!("--scenario is required (e.g. scenarios/provider-outage.yaml)");
                };
                let passed = drill::drill(drill::DrillArgs {
                    scenario,
                    config,
                    speed,
                    rps,
                    duration,
                    route,
                    out,
                    store,
                    asserts,
                    listen: "127.0.0.1:0".into(),
                    instances: usize::from(instances),
                    redis,
                })
                .await?;
                Ok(if passed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
        },
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Binds, announces the address on stdout (scripts wait for this line), and
/// serves until Ctrl-C or SIGTERM, then drains (see `bulwark_gateway::serve`).
pub async fn serve(
    config: &GatewayConfig,
    addr: &str,
    log_format: LogFormat,
    insecure_open: bool,
    reload: Reload,
) -> anyhow::Result<()> {
    let gateway = bulwark_gateway::Gateway::start(config).await?;
    gateway.set_config_file(reload.path, reload.loaded_from.as_deref());
    reload_on_hangup(&gateway, reload.hangups);
    if reload.watch {
        tokio::spawn(bulwark_gateway::reload::watch_config(
            gateway.clone(),
            std::time::Duration::from_secs(1),
        ));
    }
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() && !insecure_open {
        gateway.require_client_keys();
    }
    if gateway.is_open() {
        // Without client keys, anyone who can reach the gateway spends the
        // provider keys: only this machine may.
        if local.ip().is_loopback() {
            tracing::warn!(
                "no client keys configured: the gateway is open to any program on this machine ({local})"
            );
        } else if insecure_open {
            tracing::warn!(
                "no client keys configured and --insecure-open given: anyone who reaches {local} spends the provider keys"
            );
        } else {
            anyhow::bail!(
                "refusing to listen on {local} without client keys: add `keys:` to the config (see README), listen on 127.0.0.1, or pass --insecure-open if something in front authenticates callers"
            );
        }
    }
    let announcement = format!("bulwark listening on http://{local}");
    match log_format {
        LogFormat::Text => println!("{announcement}"),
        // In JSON, so that a collector reading stdout and stderr together
        // sees nothing but JSON lines.
        LogFormat::Json => println!(
            "{}",
            serde_json::json!({"message": announcement, "address": format!("http://{local}")})
        ),
    }
    std::io::stdout().flush()?;
    bulwark_gateway::serve(listener, gateway, shutdown_signal()).await?;
    Ok(())
}

/// Where `serve` reloads its config from, and whether on every change.
pub struct Reload {
    pub path: PathBuf,
    /// The file's content when the running config was loaded from it.
    pub loaded_from: Option<Vec<u8>>,
    pub watch: bool,
    pub hangups: Option<Hangups>,
}

#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = ();

/// SIGHUP, caught from now on (a signal that arrives before the handler
/// reads it waits for it).
fn hangup_signal() -> Option<Hangups> {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => Some(hangups),
        Err(error) => {
            tracing::warn!("cannot listen for SIGHUP ({error}); reload with POST /admin/reload");
            None
        }
    }
    #[cfg(not(unix))]
    None
}

/// Reloads the config file on each SIGHUP, the signal daemons take for it.
fn reload_on_hangup(gateway: &bulwark_gateway::Gateway, hangups: Option<Hangups>) {
    #[cfg(unix)]
    if let Some(mut hangups) = hangups {
        let gateway = gateway.clone();
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                // Applied or refused, the reload logs what it did.
                let _ = gateway.reload_from_file().await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (gateway, hangups);
}

/// Ctrl-C, or SIGTERM as `docker stop`, systemd and Kubernetes send it.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // Without a signal handler, run until killed.
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(error) => {
                tracing::warn!("cannot listen for SIGTERM ({error}); only Ctrl-C stops gracefully");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
