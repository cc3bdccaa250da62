//! A pool of sessions of one model, each running one inference at a time: a caller takes
//! a session (waiting when all are busy), runs, and gives it back. The wait and the
//! inference are timed per model (`warden_model_wait_seconds`,
//! `warden_model_inference_seconds`).

use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use ort::session::Session;

pub struct SessionPool {
    /// The model's name in metrics.
    name: &'static str,
    idle: Mutex<Vec<Session>>,
    returned: Condvar,
    size: usize,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionPool({})", self.size)
    }
}

/// Builds one session. The builder's errors are not `Send`; this function turns them into
/// plain `ort::Error`s before they cross an await or thread.
fn session(
    env: &ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> ort::Result<Session> {
    let mut builder = Session::builder(env)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(false)?
        .with_inter_op_spinning(false)?;
    builder.commit_from_file(model)
}

impl SessionPool {
    /// `sessions` sessions (at least one) of `model`, each using `threads` threads; `name`
    /// names the model in metrics.
    pub fn load(
        name: &'static str,
        env: &ort::environment::Environment,
        model: &Path,
        sessions: usize,
        threads: usize,
    ) -> anyhow::Result<SessionPool> {
        let idle = (0..sessions.max(1))
            .map(|_| {
                session(env, model, threads.max(1))
                    .map_err(|e| anyhow::anyhow!("model {}: {e}", model.display()))
            })
            .collect::<anyhow::Result<Vec<Session>>>()?;
        Ok(SessionPool {
            name,
            size: idle.len(),
            idle: Mutex::new(idle),
            returned: Condvar::new(),
        })
    }

    /// How many sessions the pool holds (inferences that can run at once).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` on a session, waiting for one when all are busy.
    pub fn run<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let metrics = crate::telemetry::metrics();
        let asked = Instant::now();
        let mut session = self.take();
        let started = Instant::now();
        metrics
            .model_wait
            .with_label_values(&[self.name])
            .observe(started.duration_since(asked).as_secs_f64());
        let out = f(&mut session);
        metrics
            .model_inference
            .with_label_values(&[self.name])
            .observe(started.elapsed().as_secs_f64());
        self.give_back(session);
        out
    }

    fn take(&self) -> Session {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(s) = idle.pop() {
                return s;
            }
            idle = self.returned.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn give_back(&self, session: Session) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        self.returned.notify_one();
    }
}
