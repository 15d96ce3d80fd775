//! Test certificates, made with rcgen at test time: a CA and the leaves it
//! signs, written as PEM files into a test's scratch directory.
//!
//! Use from a test file with `mod common;` and
//! `#[path = "common/tls.rs"] mod tls;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{ChildGuard, Lines, START_TIMEOUT, repo_root};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A certificate authority that signs test leaves.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate's file.
    pub pem: PathBuf,
}

/// A leaf's certificate and key files.
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca { params, key, pem }
    }

    /// A leaf for `dns` names (and an optional URI SAN), as PEM strings.
    pub fn issue_pem(&self, cn: &str, dns: &[&str], uri: Option<&str>) -> (String, String) {
        self.issue_pem_with(cn, dns, uri, |_| {})
    }

    /// [`Ca::issue`] of a leaf whose validity ended in 2020.
    pub fn issue_expired(&self, dir: &Path, stem: &str, cn: &str, dns: &[&str]) -> Leaf {
        let (cert, key) = self.issue_pem_with(cn, dns, None, |p| {
            p.not_before = rcgen::date_time_ymd(2019, 1, 1);
            p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        });
        write_leaf(dir, stem, cert, key)
    }

    fn issue_pem_with(
        &self,
        cn: &str,
        dns: &[&str],
        uri: Option<&str>,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(SanType::URI(uri.try_into().unwrap()));
        }
        adjust(&mut params);
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// [`Ca::issue_pem`] written to `dir/STEM.pem` and `dir/STEM.key`.
    pub fn issue(&self, dir: &Path, stem: &str, cn: &str, dns: &[&str], uri: Option<&str>) -> Leaf {
        let (cert, key) = self.issue_pem(cn, dns, uri);
        write_leaf(dir, stem, cert, key)
    }
}

fn write_leaf(dir: &Path, stem: &str, cert: String, key: String) -> Leaf {
    let leaf = Leaf {
        cert: dir.join(format!("{stem}.pem")),
        key: dir.join(format!("{stem}.key")),
    };
    std::fs::write(&leaf.cert, cert).unwrap();
    std::fs::write(&leaf.key, key).unwrap();
    leaf
}

/// `path` as a string for configs and command lines.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Python's HTTPS server with `leaf`, requiring client certificates from
/// `client_ca` when given.
pub struct HttpsServer {
    _child: ChildGuard,
    pub port: u16,
}

impl HttpsServer {
    pub fn start(tag: &str, leaf: &Leaf, client_ca: Option<&std::path::Path>) -> HttpsServer {
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("tests/peers/tls/https_server.py"))
            .args(["--cert", s(&leaf.cert), "--key", s(&leaf.key), "--tag", tag]);
        if let Some(ca) = client_ca {
            cmd.args(["--client-ca", s(ca)]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed");
        let lines = Lines::spawn(child.stdout.take().unwrap());
        let child = ChildGuard(child);
        let first = lines
            .next(START_TIMEOUT)
            .expect("https server printed nothing");
        let v: serde_json::Value = serde_json::from_str(&first).unwrap();
        HttpsServer {
            _child: child,
            port: v["port"].as_u64().unwrap() as u16,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A Node TLS tunnel to `target`; returns it and its local plain port.
pub fn tunnel(
    target: std::net::SocketAddr,
    ca: &str,
    client: Option<&Leaf>,
) -> (ChildGuard, u16, Lines) {
    let mut cmd = Command::new("node");
    cmd.arg(repo_root().join("tests/peers/tls/tunnel.js"))
        .args([
            "--connect",
            &target.to_string(),
            "--ca",
            ca,
            "--servername",
            "localhost",
        ]);
    if let Some(leaf) = client {
        cmd.args(["--cert", s(&leaf.cert), "--key", s(&leaf.key)]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is needed for the TLS tunnel");
    let lines = Lines::spawn(child.stdout.take().unwrap());
    let child = ChildGuard(child);
    let first = lines.next(START_TIMEOUT).expect("tunnel printed nothing");
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    (child, v["port"].as_u64().unwrap() as u16, lines)
}

/// `curl` to `https://NAME:PORT/PATH`, NAME resolved to `addr` (so the
/// SNI and the verified name are NAME), trusting `ca`.
pub fn curl_https(
    addr: std::net::SocketAddr,
    name: &str,
    path: &str,
    ca: &str,
    extra: &[&str],
) -> crate::http_peers::CurlOut {
    let resolve = format!("{name}:{}:127.0.0.1", addr.port());
    let url = format!("https://{name}:{}{path}", addr.port());
    let mut args = vec!["--cacert", ca, "--resolve", &resolve];
    args.extend_from_slice(extra);
    args.push(&url);
    crate::http_peers::curl(&args)
}
