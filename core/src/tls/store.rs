//! The certificates of one TLS listener: chosen by SNI for each handshake,
//! and replaced live when their files change on disk.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

use super::certs::{CertInfo, LoadedPair, Stamp, load_pair, stamp};
use super::error::TlsError;
use crate::config::CertificateConfig;

/// How often certificate files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Counters of certificate reloads: applied and refused.
#[derive(Debug, Clone, Default)]
pub struct ReloadCounters {
    /// A changed pair loaded and serving.
    pub ok: Counter,
    /// A changed pair refused (the old one keeps serving).
    pub rejected: Counter,
}

/// The loaded pairs of one listener, in config order.
pub struct CertStore {
    listener: Arc<str>,
    configured: Vec<CertificateConfig>,
    pairs: ArcSwap<Vec<LoadedPair>>,
    /// The stamps last tried per pair, so a broken file is reported once
    /// per change rather than at every check.
    attempted: Mutex<Vec<(Stamp, Stamp)>>,
    strict_sni: bool,
    provider: Arc<CryptoProvider>,
    reloads: ReloadCounters,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("listener", &self.listener)
            .field("certificates", &self.certificates())
            .finish()
    }
}

impl CertStore {
    /// Loads every configured pair; any failure fails the whole store.
    pub fn load(
        listener: &str,
        configured: &[CertificateConfig],
        strict_sni: bool,
        provider: Arc<CryptoProvider>,
        reloads: ReloadCounters,
    ) -> Result<Self, TlsError> {
        if configured.is_empty() {
            return Err(TlsError::Setting("`certificates` is empty".into()));
        }
        let pairs = configured
            .iter()
            .map(|c| load_pair(&c.cert, &c.key, &lower(&c.server_names), &provider))
            .collect::<Result<Vec<_>, _>>()?;
        let attempted = pairs.iter().map(|p| p.stamps).collect();
        Ok(Self {
            listener: listener.into(),
            configured: configured.to_vec(),
            pairs: ArcSwap::from_pointee(pairs),
            attempted: Mutex::new(attempted),
            strict_sni,
            provider,
            reloads,
        })
    }

    /// What each loaded certificate says about itself, in config order.
    pub fn certificates(&self) -> Vec<CertInfo> {
        self.pairs.load().iter().map(|p| p.info.clone()).collect()
    }

    /// The pair answering `server_name`: an exact name, then a wildcard,
    /// then (unless SNI is strict) the default.
    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let pairs = self.pairs.load();
        if let Some(name) = server_name {
            let name = name.to_ascii_lowercase();
            let names = |p: &&LoadedPair| p.info.server_names.contains(&name);
            if let Some(p) = pairs.iter().find(names) {
                return Some(p.key.clone());
            }
            let wildcard = |p: &&LoadedPair| {
                p.info
                    .server_names
                    .iter()
                    .any(|n| wildcard_matches(n, &name))
            };
            if let Some(p) = pairs.iter().find(wildcard) {
                return Some(p.key.clone());
            }
        }
        if self.strict_sni {
            return None;
        }
        pairs
            .iter()
            .find(|p| p.info.server_names.is_empty())
            .or_else(|| pairs.first())
            .map(|p| p.key.clone())
    }

    /// Reloads every pair whose files changed since they were last tried.
    /// A pair that fails to load is logged and counted, and the one before
    /// it keeps serving.
    pub fn refresh(&self) {
        let mut attempted = self.attempted.lock().unwrap_or_else(|e| e.into_inner());
        let mut next: Option<Vec<LoadedPair>> = None;
        for (i, c) in self.configured.iter().enumerate() {
            let now = (stamp(&c.cert), stamp(&c.key));
            if attempted.get(i) == Some(&now) {
                continue;
            }
            if let Some(slot) = attempted.get_mut(i) {
                *slot = now;
            }
            match load_pair(&c.cert, &c.key, &lower(&c.server_names), &self.provider) {
                Ok(pair) => {
                    info!(listener = %self.listener, cert = %c.cert, subject = %pair.info.subject, "certificate reloaded");
                    self.reloads.ok.inc();
                    let list = next.get_or_insert_with(|| self.pairs.load().to_vec());
                    if let Some(slot) = list.get_mut(i) {
                        *slot = pair;
                    }
                }
                Err(e) => {
                    warn!(listener = %self.listener, error = %e, "changed certificate refused; the previous one keeps serving");
                    self.reloads.rejected.inc();
                }
            }
        }
        if let Some(list) = next {
            self.pairs.store(Arc::new(list));
        }
    }

    /// Checks the files every [`WATCH_INTERVAL`] while the store is alive
    /// (a config reload that drops the listener's TLS ends the task).
    pub fn watch(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(store) = weak.upgrade() else { return };
                // File reads are blocking: off the runtime's workers.
                if tokio::task::spawn_blocking(move || store.refresh())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(client_hello.server_name())
    }
}

fn lower(names: &[String]) -> Vec<String> {
    names.iter().map(|n| n.to_ascii_lowercase()).collect()
}

/// Whether `*.suffix` covers `name` (exactly one more label in front).
fn wildcard_matches(pattern: &str, name: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((label, rest)) => !label.is_empty() && rest == suffix,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_matches;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(wildcard_matches("*.shop.example.com", "a.shop.example.com"));
        assert!(!wildcard_matches("*.shop.example.com", "shop.example.com"));
        assert!(!wildcard_matches(
            "*.shop.example.com",
            "a.b.shop.example.com"
        ));
        assert!(!wildcard_matches("shop.example.com", "shop.example.com"));
        assert!(!wildcard_matches("*.example.com", ".example.com"));
    }
}
