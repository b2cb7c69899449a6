//! The multi-process harness of issue 14: a simulated provider, three real
//! `bulwark serve` processes sharing one Redis (a key prefix of the test's
//! own) and one PostgreSQL database (created for the test and dropped), and
//! nginx in front of them from `deploy/nginx/bulwark.conf`.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the harness"
)]

pub mod load;
pub mod netns;
pub mod nginx;
pub mod postgres;
pub mod process;
pub mod redis;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use process::{Running, Scratch, spawn_announcing};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const INSTANCES: usize = 3;

/// One cluster at a time in a test binary: five processes and a load each
/// would otherwise share two cores with the others, and the timing bounds
/// (a breaker honoured within 1 s, no request slower than 2 s) would
/// measure the machine instead of Bulwark. Each test holds it throughout.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How a cluster is made.
pub struct Spec<'a> {
    /// Names the scratch directory, key prefix and database.
    pub test: &'a str,
    /// The simulator's scenario (YAML).
    pub scenario: &'a str,
    /// The gateway config without `listen`, `redis` and `store`; `{sim}` is
    /// replaced by the simulator's URL.
    pub config: &'a str,
    /// Where Redis is: the machine's, or a private one.
    pub redis_port: u16,
    /// The port the instances reach Redis through when it is not
    /// `redis_port` (a link the test can cut).
    pub redis_link: Option<u16>,
    /// Where the instances reach PostgreSQL: the server, or a proxy.
    pub store_port: u16,
    /// Start the three at the same moment (they race to migrate the new
    /// database) rather than each once the last is serving.
    pub together: bool,
    /// Each instance in its own network namespace, reaching Redis,
    /// PostgreSQL (`store_port` must then listen on the bridge) and the
    /// simulator on the bridge's address.
    pub net: Option<&'a netns::Net>,
}

pub struct Instance {
    pub url: String,
    /// In the instance id (`inst<N>-<pid>-...`, from HOSTNAME and the pid).
    pub name: String,
    pub process: Running,
}

pub struct Cluster {
    pub sim: String,
    pub instances: Vec<Instance>,
    pub lb: nginx::Nginx,
    pub keys: redis::Prefix,
    pub db: postgres::Database,
    pub config: PathBuf,
    _sim: Running,
    scratch: Scratch,
}

impl Cluster {
    pub fn start(spec: &Spec) -> TestResult<Cluster> {
        let scratch = Scratch::new(spec.test)?;
        let scenario = scratch.write("sim.yaml", spec.scenario)?;
        // What the instances reach the test's side at.
        let host = spec
            .net
            .map_or("127.0.0.1".to_string(), netns::Net::host_ip);
        let redis_host = spec
            .net
            .map_or("127.0.0.1".to_string(), netns::Net::redis_ip);
        let sim_listen = if spec.net.is_some() {
            "0.0.0.0:0"
        } else {
            "127.0.0.1:0"
        };
        let (sim_process, sim_announced) = spawn_announcing(
            Command::new(env!("CARGO_BIN_EXE_bulwark"))
                .args(["sim", "--listen", sim_listen, "--scenario"])
                .arg(&scenario),
            "bulwark-sim listening on ",
            &scratch.0.join("sim.log"),
        )?;
        let sim = sim_announced.replace("0.0.0.0", "127.0.0.1");
        let keys = redis::Prefix::new(spec.redis_port, spec.test);
        let db = postgres::Database::create(spec.test)?;
        let config = scratch.write(
            "bulwark.yaml",
            &format!(
                "listen: 127.0.0.1:0\nredis: {{ url: \"redis://{redis_host}:{}/0\", timeout: 50ms, key_prefix: \"{}\" }}\nstore: \"{}\"\nshutdown_grace: 1s\n{}",
                spec.redis_link.unwrap_or(spec.redis_port),
                keys.prefix,
                db.url(&host, spec.store_port),
                spec.config
                    .replace("{sim}", &sim_announced.replace("0.0.0.0", &host)),
            ),
        )?;
        let instances = if spec.together {
            std::thread::scope(|scope| {
                let starting: Vec<_> = (1..=INSTANCES)
                    .map(|n| {
                        let (scratch, config) = (&scratch, &config);
                        scope.spawn(move || start_instance(scratch, config, n, spec.net))
                    })
                    .collect();
                starting
                    .into_iter()
                    .map(|s| s.join().map_err(|_| "an instance's start panicked")?)
                    .collect::<TestResult<Vec<_>>>()
            })?
        } else {
            // One after another: each is serving before the next starts.
            (1..=INSTANCES)
                .map(|n| start_instance(&scratch, &config, n, spec.net))
                .collect::<TestResult<Vec<_>>>()?
        };
        let upstreams: Vec<String> = instances
            .iter()
            .map(|i| i.url.trim_start_matches("http://").to_string())
            .collect();
        let lb = nginx::start(&scratch.0, &upstreams)?;
        Ok(Cluster {
            sim,
            instances,
            lb,
            keys,
            db,
            config,
            _sim: sim_process,
            scratch,
        })
    }

    /// Replaces the simulator's fault rules (the YAML shapes, as JSON).
    pub async fn set_faults(&self, client: &reqwest::Client, rules: Value) -> TestResult {
        let response = client
            .put(format!("{}/_sim/faults", self.sim))
            .header("content-type", "application/json")
            .body(rules.to_string())
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("PUT /_sim/faults: {}", response.status()).into());
        }
        Ok(())
    }

    /// Requests the simulator received for `model`.
    pub async fn sim_count(&self, client: &reqwest::Client, model: &str) -> u64 {
        let stats = load::json(client, &format!("{}/_sim/stats", self.sim)).await;
        stats["by_model"][model].as_u64().unwrap_or(0)
    }

    /// The instance whose id (`inst<N>-<pid>-...`) the judge's lease key
    /// under the prefix holds (a key named for a lease, judge or leader;
    /// the heartbeat's set of live instances names them all).
    pub fn lease_holder(&self) -> Option<usize> {
        self.keys
            .keys()
            .iter()
            .filter(|k| ["lease", "judge", "leader"].iter().any(|w| k.contains(w)))
            .filter_map(|k| self.keys.get(k))
            .find_map(|value| {
                self.instances
                    .iter()
                    .position(|i| value.contains(&format!("{}-{}-", i.name, i.process.pid())))
            })
    }
}

fn start_instance(
    scratch: &Scratch,
    config: &std::path::Path,
    n: usize,
    net: Option<&netns::Net>,
) -> TestResult<Instance> {
    let name = format!("inst{n}");
    let bulwark = env!("CARGO_BIN_EXE_bulwark");
    let (mut command, listen) = match net {
        Some(net) => (
            net.command(n, bulwark)?,
            format!("{}:0", net.instance_ip(n)),
        ),
        None => (Command::new(bulwark), "127.0.0.1:0".to_string()),
    };
    let (process, url) = spawn_announcing(
        command
            .args(["serve", "--config"])
            .arg(config)
            // Beyond loopback `serve` wants client keys; only the test's
            // bridge reaches it, as only nginx would in production.
            .args(net.map(|_| "--insecure-open"))
            .args(["--listen", &listen])
            .env("HOSTNAME", &name),
        "bulwark listening on ",
        &scratch.0.join(format!("{name}.log")),
    )?;
    Ok(Instance { url, name, process })
}
