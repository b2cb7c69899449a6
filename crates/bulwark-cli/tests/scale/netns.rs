//! Each instance its own host: a network namespace per instance with two
//! links, one to the front network (nginx, the simulator, PostgreSQL) and
//! one to Redis's network, so that the network between the instances and
//! Redis is real and can be cut (its link goes down: packets are lost, no
//! reset) while nginx still reaches them.

use std::process::{Command, Stdio};

use super::TestResult;

/// Namespaces `bw<tag>-<n>`; the front bridge `bw<tag>fb` at
/// `<front>.1/24` with instance `n` at `<front>.<10 + n>`, and Redis's
/// bridge `bw<tag>rb` at `<redis>.1/24` with instance `n` at
/// `<redis>.<10 + n>`. Everything is removed on drop.
pub struct Net {
    tag: String,
    front: String,
    redis: String,
    hosts: Vec<String>,
}

fn ip(args: &[&str]) -> TestResult {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn in_namespace(namespace: &str, args: &[&str]) -> TestResult {
    let mut all = vec!["netns", "exec", namespace];
    all.extend_from_slice(args);
    ip(&all)
}

impl Net {
    /// Whether this machine lets the test make namespaces (root, and a
    /// kernel that has them).
    pub fn available() -> bool {
        let name = format!("bwprobe{:06x}", fastrand::u32(..0xff_ffff));
        let made = ip(&["netns", "add", &name]).is_ok();
        let _ = ip(&["netns", "del", &name]);
        made
    }

    pub fn create(hosts: usize) -> TestResult<Net> {
        let a = fastrand::u8(100..250);
        let b = fastrand::u8(1..250);
        let mut net = Net {
            tag: format!("{:04x}", fastrand::u16(..)),
            front: format!("10.{a}.{b}"),
            redis: format!("10.{}.{b}", a + 1),
            hosts: Vec::new(),
        };
        for (bridge, subnet) in [
            (net.bridge("fb"), &net.front),
            (net.bridge("rb"), &net.redis),
        ] {
            ip(&["link", "add", &bridge, "type", "bridge"])?;
            ip(&["addr", "add", &format!("{subnet}.1/24"), "dev", &bridge])?;
            ip(&["link", "set", &bridge, "up"])?;
        }
        for n in 1..=hosts {
            let namespace = format!("bw{}-{n}", net.tag);
            ip(&["netns", "add", &namespace])?;
            net.hosts.push(namespace.clone());
            in_namespace(&namespace, &["ip", "link", "set", "lo", "up"])?;
            for (side, bridge, subnet) in [
                ("f", net.bridge("fb"), &net.front),
                ("r", net.bridge("rb"), &net.redis),
            ] {
                let outside = net.outside(side, n);
                let inside = format!("bw{}{side}{n}", net.tag);
                ip(&[
                    "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                ])?;
                ip(&["link", "set", &outside, "master", &bridge])?;
                ip(&["link", "set", &outside, "up"])?;
                ip(&["link", "set", &inside, "netns", &namespace])?;
                let address = format!("{subnet}.{}/24", 10 + n);
                in_namespace(&namespace, &["ip", "addr", "add", &address, "dev", &inside])?;
                in_namespace(&namespace, &["ip", "link", "set", &inside, "up"])?;
            }
        }
        Ok(net)
    }

    fn bridge(&self, kind: &str) -> String {
        format!("bw{}{kind}", self.tag)
    }

    /// The host's end of instance `n`'s link to the front (`f`) or Redis
    /// (`r`) network.
    fn outside(&self, side: &str, n: usize) -> String {
        format!("bw{}{side}h{n}", self.tag)
    }

    /// The test's side of the front network: where PostgreSQL's proxy and
    /// the simulator listen for the instances, and where nginx comes from.
    pub fn host_ip(&self) -> String {
        format!("{}.1", self.front)
    }

    /// Where Redis listens on its own network.
    pub fn redis_ip(&self) -> String {
        format!("{}.1", self.redis)
    }

    pub fn instance_ip(&self, n: usize) -> String {
        format!("{}.{}", self.front, 10 + n)
    }

    /// `program` run inside instance `n`'s namespace (`ip netns exec`
    /// execs it, so the child's pid is the program's).
    pub fn command(&self, n: usize, program: &str) -> TestResult<Command> {
        let namespace = self.hosts.get(n - 1).ok_or("no such host")?;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", namespace, program]);
        Ok(command)
    }

    /// Cuts instance `n`'s link to Redis's network (`cut`), or mends it.
    /// The host's end goes down: the instance's packets to Redis are lost
    /// without a reset, as when a switch or a cable fails.
    pub fn cut_redis(&self, n: usize, cut: bool) -> TestResult {
        let state = if cut { "down" } else { "up" };
        ip(&["link", "set", &self.outside("r", n), state])
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the pair, and with it the
        // other end.
        for namespace in &self.hosts {
            let _ = ip(&["netns", "del", namespace]);
        }
        let _ = ip(&["link", "del", &self.bridge("fb")]);
        let _ = ip(&["link", "del", &self.bridge("rb")]);
    }
}
