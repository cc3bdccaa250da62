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

/// Servers that speak only TLS, with a certificate signed by a test CA: the servers'
/// arguments, and `redis-cli`'s.
pub struct Tls {
    server: Vec<String>,
    cli: Vec<String>,
}

impl Tls {
    /// The server certificate `cert` and `key`, signed by `ca`; clients need none.
    pub fn new(cert: &str, key: &str, ca: &str) -> Tls {
        let server = [
            "--tls-cert-file",
            cert,
            "--tls-key-file",
            key,
            "--tls-ca-cert-file",
            ca,
            "--tls-auth-clients",
            "no",
        ];
        Tls {
            server: server.map(String::from).to_vec(),
            cli: ["--tls", "--cacert", ca].map(String::from).to_vec(),
        }
    }

    fn none() -> Tls {
        Tls {
            server: Vec::new(),
            cli: Vec::new(),
        }
    }

    /// The arguments a server on `port` starts with.
    fn listen(&self, port: &str) -> Vec<String> {
        let listen = if self.server.is_empty() {
            vec!["--port", port]
        } else {
            vec!["--port", "0", "--tls-port", port]
        };
        listen
            .into_iter()
            .map(String::from)
            .chain(self.server.iter().cloned())
            .collect()
    }

    /// A server on `port` with `args` after its listening ones.
    fn start(&self, port: u16, args: &[&str]) -> Redis {
        self.try_start(port, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Tls::start`], or why the server did not start.
    fn try_start(&self, port: u16, args: &[&str]) -> Result<Redis, String> {
        let mut all = self.listen(&port.to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        Ok(Redis::try_start_with(port, &all)?.with_cli_args(&self.cli))
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(&Tls::none())
    }

    /// A cluster whose nodes speak `tls` (only TLS, to clients and between them, unless
    /// it is none).
    pub fn start_with(tls: &Tls) -> Cluster {
        let nodes: Vec<Redis> = (0..3).map(|_| Cluster::node(tls)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(&tls.cli)
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

    /// A cluster node on ports that are free; the ports are chosen again when one was
    /// taken between choosing and binding it (tests start servers side by side).
    fn node(tls: &Tls) -> Redis {
        let mut last = String::new();
        for _ in 0..5 {
            let bus = free_port().to_string();
            let mut args = vec![
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
            ];
            if !tls.server.is_empty() {
                args.extend(["--tls-cluster", "yes"]);
            }
            match tls.try_start(free_port(), &args) {
                Ok(node) => return node,
                Err(e) => last = e,
            }
        }
        panic!("{last}")
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
        Sentinel::start_with(&Tls::none())
    }

    /// Primary, replica and sentinel speaking `tls` (only TLS, to clients and to each
    /// other, unless it is none).
    pub fn start_with(tls: &Tls) -> Sentinel {
        let primary = tls.start(free_port(), &[]);
        let primary_port = primary.port.to_string();
        let mut replica_args = vec!["--replicaof", "127.0.0.1", &primary_port];
        if !tls.server.is_empty() {
            replica_args.extend(["--tls-replication", "yes"]);
        }
        let replica = tls.start(free_port(), &replica_args);
        let port = free_port();
        // The sentinel takes its settings from a file, which it rewrites.
        let mut conf: String = tls
            .listen(&port.to_string())
            .chunks(2)
            .map(|kv| format!("{}\n", kv.join(" ").trim_start_matches("--")))
            .collect();
        if !tls.server.is_empty() {
            conf.push_str("tls-replication yes\n");
        }
        conf.push_str(&format!(
            "sentinel monitor main 127.0.0.1 {primary_port} 1\n\
             sentinel down-after-milliseconds main 1000\nsentinel failover-timeout main 5000\n"
        ));
        let sentinel =
            Redis::start_with_conf(port, Some(&conf), &["--sentinel"]).with_cli_args(&tls.cli);
        let s = Sentinel {
            primary,
            replica,
            sentinel,
        };
        let replica_port = s.replica.port.to_string();
        wait(
            "the sentinel does not see the replica",
            Duration::from_secs(30),
            || {
                s.sentinel
                    .cli(&["SENTINEL", "REPLICAS", "main"])
                    .contains(&replica_port)
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
