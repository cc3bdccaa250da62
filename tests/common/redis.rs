//! A real `redis-server` on a loopback port for the tests and benchmarks, stopped when its
//! handle drops.

use std::process::{Child, Command};
use std::time::Duration;

pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
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
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::fs::File::create(dir.path().join("redis.log")).unwrap())
            .spawn()
            .expect("redis-server (installed by scripts/setup.sh)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis did not start: {}",
                std::fs::read_to_string(dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            port,
            child: Some(child),
            _dir: dir,
        }
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
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
