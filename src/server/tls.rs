//! TLS on the listeners (rustls, through pingora). The certificate and key are read at
//! start (a bad pair is a start-up error) and again whenever a file in their directories
//! changes — a new handshake gets the new pair, open connections keep theirs, and a pair
//! that does not load is refused with the old one kept. With a client CA, the listener
//! verifies client certificates (mTLS) and hands the verified leaf's names to
//! authentication. ALPN offers HTTP/2 and HTTP/1.1 on the proxy listener.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use pingora::listeners::TlsAccept;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::tls::TlsRef;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;

use crate::auth::PeerIdentity;
use crate::config::{ClientAuth, ListenerTls};
use crate::telemetry::metrics;

/// The pingora TLS settings of a listener; `listener` names it in logs and metrics.
pub fn settings(
    tls: &ListenerTls,
    listener: &'static str,
    h2: bool,
) -> anyhow::Result<TlsSettings> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = Arc::new(ReloadingCert::load(tls, provider.clone(), listener)?);
    certs.watch()?;
    let mut settings = TlsSettings::with_callbacks(Box::new(PeerNames))
        .map_err(|e| anyhow::anyhow!("TLS settings for the {listener} listener: {e}"))?;
    settings.set_cert_resolver(certs);
    if let Some(ca) = &tls.client_ca_file {
        let mut roots = rustls::RootCertStore::empty();
        crate::http_client::add_ca_file(&mut roots, ca)
            .with_context(|| format!("client certificates of the {listener} listener"))?;
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = match tls.client_auth {
            ClientAuth::Required => builder.build()?,
            ClientAuth::Optional => builder.allow_unauthenticated().build()?,
        };
        settings.set_client_cert_verifier(verifier);
    }
    if h2 {
        settings.enable_h2();
    }
    Ok(settings)
}

/// The listener's certificate and key, swapped whole when their files change.
#[derive(Debug)]
struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    listener: &'static str,
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingCert {
    fn load(
        tls: &ListenerTls,
        provider: Arc<rustls::crypto::CryptoProvider>,
        listener: &'static str,
    ) -> anyhow::Result<ReloadingCert> {
        let pair = read_pair(&tls.cert_file, &tls.key_file, &provider)
            .with_context(|| format!("TLS for the {listener} listener"))?;
        Ok(ReloadingCert {
            cert_file: tls.cert_file.clone(),
            key_file: tls.key_file.clone(),
            provider,
            listener,
            current: ArcSwap::from_pointee(pair),
        })
    }

    /// Reads the files again; keeps the current pair when they do not load.
    fn reload(&self) {
        let result = match read_pair(&self.cert_file, &self.key_file, &self.provider) {
            Ok(pair) => {
                let changed = pair.cert != self.current.load().cert;
                self.current.store(Arc::new(pair));
                if changed {
                    tracing::info!(listener = self.listener, "TLS certificate reloaded");
                }
                "success"
            }
            Err(e) => {
                tracing::error!(listener = self.listener, error = %format!("{e:#}"), "TLS certificate reload refused; the previous one stays");
                "failure"
            }
        };
        metrics()
            .tls_reloads
            .with_label_values(&[self.listener, result])
            .inc();
    }

    /// Reloads on changes in the files' directories (debounced), on a thread that lives
    /// as long as the process. Directories, not files: editors and Kubernetes Secret
    /// volumes replace files rather than write them.
    fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = tx.send(());
                }
            })?;
        let mut dirs: Vec<&Path> = [&self.cert_file, &self.key_file]
            .iter()
            .filter_map(|f| f.parent())
            .collect();
        dirs.dedup();
        for dir in dirs {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        let certs = self.clone();
        std::thread::Builder::new()
            .name(format!("tls-reload-{}", self.listener))
            .spawn(move || {
                let _watcher = watcher; // unwatched only with the thread
                while rx.recv().is_ok() {
                    // A certificate and its key are written one after the other.
                    std::thread::sleep(Duration::from_millis(200));
                    while rx.try_recv().is_ok() {}
                    certs.reload();
                }
            })?;
        Ok(())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A certificate chain and its private key, checked to belong together.
fn read_pair(
    cert_file: &Path,
    key_file: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("cannot read {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert_file.display());
    }
    // The key's own error could quote it: only the file is named.
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|_| anyhow::anyhow!("{} holds no readable private key", key_file.display()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|_| anyhow::anyhow!("the key in {} is not usable", key_file.display()))?;
    let pair = CertifiedKey::new(certs, signing);
    pair.keys_match().map_err(|_| {
        anyhow::anyhow!(
            "the key in {} does not belong to the certificate in {}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(pair)
}

/// Hands the verified client certificate's names to the request (`PeerIdentity` in the
/// connection's TLS digest).
struct PeerNames;

#[async_trait]
impl TlsAccept for PeerNames {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let leaf = tls.peer_certificate_der()?;
        let identity = PeerIdentity::from_der(leaf)?;
        Some(Arc::new(identity))
    }
}
