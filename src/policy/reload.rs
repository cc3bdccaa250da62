//! The active policy set and its hot reload. Readers take an immutable snapshot (arc-swap,
//! no locks); a file change (notify) or SIGHUP reloads the whole directory atomically. An
//! invalid edit — including one naming a profile `warden.yaml` does not configure — is
//! refused: the last good set stays active and the refusal is logged, counted and shown
//! in `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};

use super::load::{LoadError, PolicySet, load_dir};
use super::references::{self, Configured};
use crate::telemetry::metrics;

pub struct PolicyStore {
    dir: PathBuf,
    /// The profiles rules may name.
    configured: Configured,
    current: ArcSwap<PolicySet>,
    last_error: Mutex<Option<String>>,
    /// Runs with each set that becomes active, before it does (e.g. embedding new tools).
    prepare: Mutex<Option<Preparer>>,
}

/// Work a new set needs before it decides (see [`PolicyStore::prepare_with`]).
pub type Preparer = Box<dyn Fn(&PolicySet) + Send + Sync>;

impl PolicyStore {
    /// Loads `dir`; fails when the initial set is invalid or names profiles that are not
    /// `configured`.
    pub fn open(dir: &Path, configured: Configured) -> Result<PolicyStore, Vec<LoadError>> {
        let set = load_checked(dir, &configured)?;
        record_active(&set);
        Ok(PolicyStore {
            dir: dir.to_path_buf(),
            configured,
            current: ArcSwap::from_pointee(set),
            last_error: Mutex::new(None),
            prepare: Mutex::new(None),
        })
    }

    /// Opens the policy directory of `config`, checked against what it configures; every
    /// error in one message (start-up, `warden tools`).
    pub fn open_for(dir: &Path, config: &crate::config::Config) -> anyhow::Result<PolicyStore> {
        PolicyStore::open(dir, Configured::of(config)).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid policy:\n  {}", lines.join("\n  "))
        })
    }

    /// Runs `prepare` on the active set now and on every reloaded set before it becomes
    /// active.
    pub fn prepare_with(&self, prepare: Preparer) {
        prepare(&self.current.load());
        if let Ok(mut g) = self.prepare.lock() {
            *g = Some(prepare);
        }
    }

    /// The active set.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Today's price (UTC) of the first of `names` the pricing lists — the client-facing
    /// model, then its upstream name.
    pub fn price(&self, names: &[&str]) -> Option<super::pricing::Price> {
        let today = chrono::Utc::now().date_naive();
        self.current().pricing.price(names, today).cloned()
    }

    /// Why the last reload was refused, if it was.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }

    /// Reloads the directory; keeps the active set when the new one is invalid.
    pub fn reload(&self) -> Result<(), Vec<LoadError>> {
        match load_checked(&self.dir, &self.configured) {
            Ok(set) => {
                let changed = set.digest != self.current.load().digest;
                if changed {
                    tracing::info!(digest = %set.digest, rules = set.rules.len(), "policy reloaded");
                }
                if let Ok(g) = self.prepare.lock()
                    && let Some(prepare) = g.as_ref()
                {
                    prepare(&set);
                }
                record_active(&set);
                self.current.store(Arc::new(set));
                if let Ok(mut g) = self.last_error.lock() {
                    *g = None;
                }
                metrics()
                    .policy_reloads
                    .with_label_values(&["success"])
                    .inc();
                Ok(())
            }
            Err(errors) => {
                for e in &errors {
                    tracing::error!(error = %e, "policy reload refused; the previous policy stays active");
                }
                let summary = errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                // Metrics first: whoever sees the error in /readyz also sees them.
                metrics()
                    .policy_reloads
                    .with_label_values(&["failure"])
                    .inc();
                metrics().policy_valid.set(0);
                if let Ok(mut g) = self.last_error.lock() {
                    *g = Some(summary);
                }
                Err(errors)
            }
        }
    }

    /// Reloads on SIGHUP and, with `files`, on changes in the directory (debounced), on
    /// background threads that live as long as the process.
    pub fn watch(self: &Arc<Self>, files: bool) -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let fs_tx = tx.clone();
        let watcher = if files {
            let mut w =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok_and(|e| !e.kind.is_access()) {
                        let _ = fs_tx.send(());
                    }
                })?;
            w.watch(&self.dir, RecursiveMode::NonRecursive)?;
            Some(w)
        } else {
            None
        };
        let store = self.clone();
        std::thread::Builder::new()
            .name("policy-reload".into())
            .spawn(move || {
                let _watcher = watcher; // dropped (unwatched) only with the thread
                while rx.recv().is_ok() {
                    // Editors write in several steps: wait for the burst to settle.
                    std::thread::sleep(Duration::from_millis(100));
                    while rx.try_recv().is_ok() {}
                    let _ = store.reload();
                }
            })?;
        crate::background::spawn("policy-sighup", move || async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading policy");
                let _ = tx.send(());
            }
        })?;
        Ok(())
    }
}

fn load_checked(dir: &Path, configured: &Configured) -> Result<PolicySet, Vec<LoadError>> {
    let set = load_dir(dir)?;
    let dangling = references::check(&set, configured);
    if dangling.is_empty() {
        Ok(set)
    } else {
        Err(dangling)
    }
}

fn record_active(set: &PolicySet) {
    metrics().policy_valid.set(1);
    metrics().policy_rules.set(set.rules.len() as i64);
}
