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
}

impl Cluster {
    pub fn start() -> Cluster {
        let nodes: Vec<Redis> = (0..3)
            .map(|_| {
                let port = free_port();
                Redis::start_with(
                    port,
                    &[
                        "--port",
                        &port.to_string(),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        &free_port().to_string(),
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                        "--cluster-require-full-coverage",
                        "no",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
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
        let cluster = Cluster { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node that runs reports the cluster healthy.
    pub fn wait_ok(&self) {
        wait("the cluster is not ok", Duration::from_secs(30), || {
            self.nodes
                .iter()
                .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        });
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
            .position(|n| !n.cli(&["GET", key]).contains("MOVED"))
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
