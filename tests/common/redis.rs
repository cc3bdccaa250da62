//! A real `redis-server` on a loopback port for the tests and benchmarks, stopped when its
//! handle drops; `redis_topologies` builds clusters and sentinels from it.

use std::process::{Child, Command};
use std::time::Duration;

pub struct Redis {
    pub port: u16,
    args: Vec<String>,
    /// Arguments `redis-cli` needs to reach it (TLS).
    cli_args: Vec<String>,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` on `port` and waits until it accepts connections.
    pub fn start(port: u16) -> Redis {
        Redis::start_with(port, &["--port", &port.to_string()])
    }

    /// Starts `redis-server` with `args` (a config file first, if any; they name the port
    /// it listens on, `port`: `--port`, or `--port 0 --tls-port` for TLS only) and waits
    /// until `port` accepts connections.
    pub fn start_with(port: u16, args: &[&str]) -> Redis {
        Redis::start_with_conf(port, None, args)
    }

    /// Starts `redis-server` with `conf` written to a config file in its directory (given
    /// first), then `args`.
    pub fn start_with_conf(port: u16, conf: Option<&str>, args: &[&str]) -> Redis {
        Redis::try_start_with_conf(port, conf, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Redis::start_with`], or why the server did not start (a port another test took
    /// between choosing it and binding it).
    pub fn try_start_with(port: u16, args: &[&str]) -> Result<Redis, String> {
        Redis::try_start_with_conf(port, None, args)
    }

    fn try_start_with_conf(port: u16, conf: Option<&str>, args: &[&str]) -> Result<Redis, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut all = Vec::new();
        if let Some(conf) = conf {
            let file = dir.path().join("redis.conf");
            std::fs::write(&file, conf).unwrap();
            all.push(file.display().to_string());
        }
        all.extend(args.iter().map(|a| a.to_string()));
        let mut redis = Redis {
            port,
            args: all,
            cli_args: Vec::new(),
            child: None,
            dir,
        };
        redis.try_spawn()?;
        Ok(redis)
    }

    fn spawn(&mut self) {
        self.try_spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server and waits until it accepts connections; says why when it exits
    /// first or never does.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("redis.log");
        let child = Command::new("redis-server")
            .args(&self.args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("redis-server (installed by scripts/setup.sh)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            if exited || std::time::Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "redis did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The server's process id (to freeze it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Kills the server (an outage); its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the killed server again with its arguments and directory (a cluster node
    /// rejoins with its `nodes.conf`), empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Tells [`Redis::cli`] how to reach a server that speaks only TLS: `--tls --cacert
    /// <ca>`.
    pub fn with_cli_args(mut self, args: &[String]) -> Redis {
        self.cli_args = args.to_vec();
        self
    }

    /// `redis-cli` on this server, without cluster redirection: its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_args)
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
