//! Long-lived background threads that run async work on their own single-threaded tokio
//! runtime (JWKS refresh, SIGHUP handling), independent of the proxy's runtimes.

use std::future::Future;

/// Spawns a named thread running `work` to completion on a current-thread runtime.
pub fn spawn<F, Fut>(name: &str, work: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(work()),
                Err(e) => tracing::error!(error = %e, "cannot start a background runtime"),
            }
        })?;
    Ok(())
}
