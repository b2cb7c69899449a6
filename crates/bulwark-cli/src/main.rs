//! The `bulwark` binary: serve the gateway, check a config, run a simulated
//! provider, or watch the demo.

mod demo;
mod incidents;
mod otel;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bulwark::Config;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(name = "bulwark", version, about = "A resilient gateway for LLM APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Start three simulated providers and the gateway, knock the primary
    /// out, and watch the fallback.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Exit after the demo traffic instead of serving until Ctrl-C.
        #[arg(long)]
        no_wait: bool,
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
    otel::init_subscriber(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(default_log_filter(&cli.command))
        }),
    );
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

/// The demo narrates on stdout; per-attempt warnings would drown it out.
fn default_log_filter(command: &Command) -> &'static str {
    match command {
        Command::Demo { .. } | Command::Incidents { .. } => "error",
        _ => "info",
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config, listen } => {
            let config = match Config::load(&config) {
                Ok(config) => config,
                Err(e) => {
                    eprint!("{e}");
                    eprintln!(
                        "bulwark: not starting until the config is fixed (`bulwark check --config {}` lists the problems)",
                        config.display()
                    );
                    return Ok(ExitCode::from(2));
                }
            };
            let addr = listen.unwrap_or_else(|| config.listen.to_string());
            let traces = otel::Traces::start(config.otel.as_ref())?;
            let served = serve(&config, &addr).await;
            traces.shutdown().await;
            served?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config: path } => match Config::load(&path) {
            Ok(config) => {
                println!(
                    "{}: OK ({} provider{}, {} route{})",
                    path.display(),
                    config.providers.len(),
                    plural(config.providers.len()),
                    config.routes.len(),
                    plural(config.routes.len())
                );
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
                None => match Config::load(&config) {
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
        Command::Demo { listen, no_wait } => {
            demo::run(&listen, no_wait).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Binds, announces the address on stdout (scripts wait for this line), and
/// serves until Ctrl-C.
pub async fn serve(config: &Config, addr: &str) -> anyhow::Result<()> {
    let gateway = bulwark_gateway::Gateway::start(config).await?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if gateway.is_open() {
        // Without client keys, anyone who can reach the gateway spends the
        // provider keys: only this machine may.
        if !local.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {local} without client keys: add `keys:` to the config (see README), or listen on 127.0.0.1"
            );
        }
        tracing::warn!(
            "no client keys configured: the gateway is open to any program on this machine ({local})"
        );
    }
    println!("bulwark listening on http://{local}");
    std::io::stdout().flush()?;
    bulwark_gateway::serve(listener, gateway, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        // Without a signal handler, run until killed.
        std::future::pending::<()>().await;
    }
}
