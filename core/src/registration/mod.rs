//! Registering a listener in a service registry (the sidecar pattern): a
//! listener with a `register:` section announces its own address there as
//! the provider of what it fronts, so consumers that read the registry call
//! the proxy.
//!
//! A registrar is built by a [`RegistrarFactory`] registered under the name
//! of its config key (`register: { zookeeper: {...} }` uses the factory
//! `zookeeper`). The proxy runs it as one task per bound listener, from the
//! moment the listener accepts connections until the listener stops (removed
//! or moved by a reload, or at shutdown), and waits, within the drain
//! deadline, for it to deregister. A reload that leaves the listener's
//! address and `register:` section unchanged leaves its registration alone.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// A boxed future of a registrar's run.
pub type RegistrationFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What one run registers.
#[derive(Debug, Clone)]
pub struct ListenerRegistration {
    /// The listener's name.
    pub listener: Arc<str>,
    /// The address the listener is bound to (port 0 resolved).
    pub bound: SocketAddr,
    /// Cancelled when the registration must end: the registrar deregisters,
    /// then its run returns.
    pub stop: CancellationToken,
}

/// A built registration target.
pub trait Registrar: Send + Sync + 'static {
    /// The registry kind, as in config (`zookeeper`).
    fn kind(&self) -> &'static str;

    /// Registers `registration.bound` (or the address the config names),
    /// keeps the registration alive across session losses until
    /// `registration.stop` is cancelled, then removes it and returns.
    fn run(self: Arc<Self>, registration: ListenerRegistration) -> RegistrationFuture;
}

/// What a factory builds a registrar with besides its config section.
#[derive(Debug, Clone)]
pub struct RegistrarContext {
    /// The listener being built.
    pub listener: String,
    /// Its protocol (`dubbo`, `auto`, ...).
    pub protocol: String,
    /// Its configured bind address (an unspecified IP needs an advertised one).
    pub address: SocketAddr,
    /// The config file's directory: relative paths are read from there.
    pub base_dir: Option<PathBuf>,
}

/// Why a `register:` section cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The section is not the shape the registrar expects.
    #[error("invalid `{kind}` registration: {message}")]
    Invalid {
        /// The registry kind.
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl RegistrationError {
    /// An invalid section of `kind`.
    pub fn invalid(kind: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            kind,
            message: message.into(),
        }
    }
}

/// Builds registrars of one kind from their config sections.
pub trait RegistrarFactory: Send + Sync + 'static {
    /// The config key (`zookeeper`).
    fn name(&self) -> &'static str;

    /// Builds a registrar from its section.
    fn build(
        &self,
        config: &serde_json::Value,
        context: &RegistrarContext,
    ) -> Result<Arc<dyn Registrar>, RegistrationError>;
}

/// A listener's built `register:` section.
#[derive(Clone)]
pub struct ConfiguredRegistrar {
    /// The section as written (compact JSON): a reload that keeps it keeps
    /// the running registration.
    pub key: String,
    /// The registrar.
    pub registrar: Arc<dyn Registrar>,
}

impl std::fmt::Debug for ConfiguredRegistrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredRegistrar")
            .field("kind", &self.registrar.kind())
            .field("key", &self.key)
            .finish()
    }
}
