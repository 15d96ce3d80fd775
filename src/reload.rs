//! Reload triggers: SIGHUP and changes to the config file (watched through
//! its directory, so editors' atomic renames are seen).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use metaproxy_core::proxy::RunningProxy;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// Reloads `path` into `proxy` (with the control plane's resources, when
/// it follows one); errors are logged and the old config keeps serving.
pub async fn reload_from(proxy: &RunningProxy, path: &Path) {
    match metaproxy_core::proxy::cpu_bound(|| metaproxy_core::config::load_file(path)) {
        Ok(loaded) => {
            if let Some(xds) = crate::xds::running() {
                if let Err(e) = xds.reload_static(&loaded).await {
                    warn!("config reload rejected; the previous config keeps serving:\n{e}");
                }
                return;
            }
            let _ = proxy.reload(&loaded).await;
        }
        Err(e) => {
            proxy.metrics().reload(false);
            warn!("config reload rejected; the previous config keeps serving:\n{e}");
        }
    }
}

/// Reloads on SIGHUP and when the file changes, until shutdown.
pub fn spawn(proxy: Arc<RunningProxy>, path: PathBuf) {
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    #[cfg(unix)]
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                let _ = tx.send("SIGHUP");
            }
        });
    }
    let watcher = watch(&path, tx);
    let shutdown = proxy.shutdown_token();
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            let why = tokio::select! {
                _ = shutdown.cancelled() => return,
                w = rx.recv() => match w { Some(w) => w, None => return },
            };
            // Editors write in bursts: wait for the burst to end.
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            info!(trigger = why, file = %path.display(), "reloading config");
            reload_from(&proxy, &path).await;
        }
    });
}

fn watch(
    path: &Path,
    tx: mpsc::UnboundedSender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name()?.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event
                .paths
                .iter()
                .any(|p| p.file_name() == Some(name.as_os_str()))
        {
            let _ = tx.send("file change");
        }
    })
    .map_err(
        |e| warn!(error = %e, "cannot watch the config file; reload with SIGHUP or POST /reload"),
    )
    .ok()?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| warn!(error = %e, dir = %dir.display(), "cannot watch the config directory"))
        .ok()?;
    Some(watcher)
}
