//! Redis topologies for the tests, from real servers on loopback ports: a three-primary
//! Redis Cluster made with `redis-cli --cluster create`, and a primary with a replica
//! watched by a sentinel. Everything stops when its handle drops.

use std::process::Command;
use std::time::Duration;

use super::free_port;
use super::redis::Redis;

/// Waits until `check` holds, or panics saying `what`.
fn wait(what: &str, limit: Duration, check: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Redis Cluster of three primaries (no replicas). A node that is down does not stop
/// the others from serving their slots (`cluster-require-full-coverage no`).
pub struct Cluster {
    pub nodes: Vec<Redis>,
    /// `redis-cli`'s TLS arguments, for a cluster that speaks only TLS.
    tls: Vec<String>,
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(Vec::new(), Vec::new())
    }

    /// A cluster that speaks only TLS, to clients and between its nodes, with the server
    /// certificate `cert` and `key` signed by `ca`; clients need no certificate.
    pub fn start_tls(cert: &str, key: &str, ca: &str) -> Cluster {
        let files = [
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            ca,
        ];
        let mut server: Vec<String> = files.iter().map(|a| a.to_string()).collect();
        server.extend(["--tls-cluster", "yes", "--tls-auth-clients", "no"].map(String::from));
        let cli = ["--tls", "--cacert", ca].map(String::from).to_vec();
        Cluster::start_with(server, cli)
    }

    fn start_with(server_tls: Vec<String>, tls: Vec<String>) -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let port = free_port().to_string();
                let mut args: Vec<&str> = if server_tls.is_empty() {
                    vec!["--port", &port]
                } else {
                    vec!["--port", "0", "--tls-port", &port]
                };
                args.extend(server_tls.iter().map(String::as_str));
                let bus = free_port().to_string();
                args.extend([
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-require-full-coverage",
                    "no",
                ]);
                Redis::start_with(port.parse().unwrap(), &args)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(&tls)
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes, tls };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node that runs reports the cluster healthy.
    pub fn wait_ok(&self) {
        wait("the cluster is not ok", Duration::from_secs(30), || {
            self.nodes.iter().all(|n| {
                self.cli(n, &["CLUSTER", "INFO"])
                    .contains("cluster_state:ok")
            })
        });
    }

    /// `redis-cli` on `node`, without cluster redirection: its output.
    pub fn cli(&self, node: &Redis, args: &[&str]) -> String {
        let mut all: Vec<&str> = self.tls.iter().map(String::as_str).collect();
        all.extend(args);
        node.cli(&all)
    }

    /// The seed URLs Warden is given.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// The index of the node that serves `key`'s slot (the others redirect it).
    pub fn node_for(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| !self.cli(n, &["GET", key]).contains("MOVED"))
            .expect("one node serves every slot")
    }
}

/// A primary, its replica and one sentinel watching them under the name `main`, which
/// declares the primary down after a second and promotes the replica.
pub struct Sentinel {
    pub primary: Redis,
    pub replica: Redis,
    pub sentinel: Redis,
}

impl Sentinel {
    pub fn start() -> Sentinel {
        let primary = Redis::start(free_port());
        let replica_port = free_port();
        let replica = Redis::start_with(
            replica_port,
            &[
                "--port",
                &replica_port.to_string(),
                "--replicaof",
                "127.0.0.1",
                &primary.port.to_string(),
            ],
        );
        let port = free_port();
        let conf = format!(
            "port {port}\nsentinel monitor main 127.0.0.1 {} 1\n\
             sentinel down-after-milliseconds main 1000\nsentinel failover-timeout main 5000\n",
            primary.port
        );
        let sentinel = Redis::start_with_conf(port, Some(&conf), &["--sentinel"]);
        let s = Sentinel {
            primary,
            replica,
            sentinel,
        };
        wait(
            "the sentinel does not see the replica",
            Duration::from_secs(30),
            || {
                s.sentinel
                    .cli(&["SENTINEL", "REPLICAS", "main"])
                    .contains(&replica_port.to_string())
            },
        );
        s
    }

    /// The port of the server the sentinel names primary now.
    pub fn primary_port(&self) -> u16 {
        self.sentinel
            .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "main"])
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Kills the primary and waits until the sentinel has promoted the replica.
    pub fn fail_over(&mut self) {
        self.primary.kill();
        let replica = self.replica.port;
        wait(
            "the sentinel did not promote the replica",
            Duration::from_secs(30),
            || self.primary_port() == replica,
        );
    }
}
