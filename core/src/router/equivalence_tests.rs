//! The indexed table answers exactly as a scan in config order does:
//! random tables (exact, prefix, suffix, regex, present and inverted
//! conditions on several keys) against random requests, and virtual hosts
//! (exact, suffix, `*`, ports, case) against the linear selection the
//! table used before it was indexed.

use std::sync::Arc;
use std::time::Duration;

use crate::metadata::{Metadata, MetadataView};
use crate::mutation::Mutation;

use super::condition::{Condition, MatchOp};
use super::hosts::{HostMatch, VirtualHost};
use super::index::MIN_INDEXED_ROUTES;
use super::route::{Redirect, Route, RouteAction};
use super::table::{HOST_KEY, RouteTable};

const KEYS: [&str; 5] = ["interface", "method", ":path", "group", "Version"];
const VALUES: [&str; 6] = ["v0", "v1", "v2", "v10", "V1", ""];

fn route(name: String, conditions: Vec<Condition>) -> Route {
    Route {
        name: Arc::from(name),
        conditions,
        action: RouteAction::Redirect(Redirect {
            scheme: None,
            host: None,
            port: None,
            path: Some("/".into()),
            code: 302,
        }),
        timeout: Duration::from_secs(1),
        rewrite: None,
        request_mutation: Mutation::new(),
        response_mutation: Mutation::new(),
        filters: None,
        retry: None,
        mirror: None,
        upgrades: Vec::new(),
    }
}

fn cond(key: &str, op: MatchOp, invert: bool) -> Condition {
    Condition {
        key: key.into(),
        op,
        invert,
    }
}

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

/// A random condition, mostly a plain `exact` so tables get indexed.
fn random_condition(rng: &mut fastrand::Rng, keys: &[&str]) -> Condition {
    let key = pick(rng, keys);
    let value = pick(rng, &VALUES).to_string();
    let op = match rng.u8(..10) {
        0..=5 => MatchOp::Exact(value),
        6 => MatchOp::Prefix(pick(rng, &["v", "v1", ""]).to_string()),
        7 => MatchOp::Suffix(pick(rng, &["0", "1"]).to_string()),
        8 => {
            MatchOp::Regex(Condition::compile_regex(pick(rng, &["v[0-2]", "v1.*", ".*"])).unwrap())
        }
        _ => MatchOp::Present(rng.bool()),
    };
    cond(key, op, rng.u8(..6) == 0)
}

fn random_routes(rng: &mut fastrand::Rng, prefix: &str) -> Vec<Route> {
    let n = match rng.u8(..4) {
        0 => rng.usize(..MIN_INDEXED_ROUTES + 2),
        1 => rng.usize(..40),
        _ => rng.usize(..200),
    };
    // A few keys per table so one of them is tested by many routes.
    let mut keys = vec![pick(rng, &KEYS)];
    keys.extend(KEYS.iter().copied().filter(|_| rng.bool()));
    (0..n)
        .map(|i| {
            let count = match rng.u8(..20) {
                0 => 0,
                1..=9 => 1,
                10..=16 => 2,
                _ => 3,
            };
            let conditions = (0..count).map(|_| random_condition(rng, &keys)).collect();
            route(format!("{prefix}r{i}"), conditions)
        })
        .collect()
}

fn random_request(rng: &mut fastrand::Rng) -> Metadata {
    let mut m = Metadata::new();
    for key in KEYS {
        if rng.u8(..10) < 7 {
            let value = if rng.u8(..10) == 0 {
                "unknown"
            } else {
                pick(rng, &VALUES)
            };
            m.insert(key.to_string(), value.to_string());
        }
    }
    m
}

/// The reference: the first route in config order whose conditions hold.
fn scan<'a>(routes: &'a [Route], view: &impl MetadataView) -> Option<&'a Route> {
    routes
        .iter()
        .find(|r| r.conditions.iter().all(|c| c.matches(view)))
}

fn same(a: Option<&Route>, b: Option<&Route>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => std::ptr::eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

#[test]
fn indexed_routes_match_what_a_scan_matches() {
    let mut rng = fastrand::Rng::with_seed(16_005);
    let (mut indexed, mut hits, mut checks) = (0, 0, 0);
    for _ in 0..400 {
        let routes = random_routes(&mut rng, "");
        let table = RouteTable::new(routes, Vec::new());
        indexed += usize::from(table.index_key(None).is_some());
        for _ in 0..200 {
            let req = random_request(&mut rng);
            let expected = scan(table.routes(), &req);
            let got = table.find(&req);
            assert!(
                same(got, expected),
                "request {req:?}: index says {:?}, scan says {:?} (key {:?})",
                got.map(|r| &r.name),
                expected.map(|r| &r.name),
                table.index_key(None),
            );
            hits += usize::from(expected.is_some());
            checks += 1;
        }
    }
    assert!(indexed > 100, "only {indexed} of 400 tables were indexed");
    assert!(
        hits > checks / 10 && hits < checks,
        "{hits} of {checks} requests matched"
    );
}

#[test]
fn the_index_narrows_but_every_condition_is_checked() {
    let mut routes: Vec<Route> = (0..MIN_INDEXED_ROUTES)
        .map(|i| {
            route(
                format!("p{i}"),
                vec![cond(":path", MatchOp::Exact(format!("/{i}")), false)],
            )
        })
        .collect();
    // Two exact values on one key: can never match, whichever is indexed.
    routes.push(route(
        "never".into(),
        vec![
            cond(":path", MatchOp::Exact("/x".into()), false),
            cond(":path", MatchOp::Exact("/y".into()), false),
        ],
    ));
    // Indexed on `/x`, but also needs a method.
    routes.push(route(
        "x-post".into(),
        vec![
            cond(":path", MatchOp::Exact("/x".into()), false),
            cond(":method", MatchOp::Exact("POST".into()), false),
        ],
    ));
    // An inverted exact is not indexed: matches every path but `/1`.
    routes.push(route(
        "not-1".into(),
        vec![cond(":path", MatchOp::Exact("/1".into()), true)],
    ));
    routes.push(route(
        "x-late".into(),
        vec![cond(":path", MatchOp::Exact("/x".into()), false)],
    ));
    let table = RouteTable::new(routes, Vec::new());
    assert_eq!(table.index_key(None), Some(":path"));
    let name = |pairs: &[(&str, &str)]| {
        let m: Metadata = pairs.iter().copied().collect();
        table.find(&m).map(|r| r.name.to_string())
    };
    assert_eq!(name(&[(":path", "/3")]).as_deref(), Some("p3"));
    assert_eq!(
        name(&[(":path", "/X")]).as_deref(),
        Some("not-1"),
        "values are compared exactly"
    );
    assert_eq!(
        name(&[(":path", "/x")]).as_deref(),
        Some("not-1"),
        "config order wins"
    );
    assert_eq!(
        name(&[(":path", "/x"), (":method", "POST")]).as_deref(),
        Some("x-post")
    );
    assert_eq!(
        name(&[]).as_deref(),
        Some("not-1"),
        "an absent key is not `/1`"
    );
}

#[test]
fn short_lists_are_scanned_and_ties_pick_the_smallest_key() {
    let few: Vec<Route> = (0..MIN_INDEXED_ROUTES - 1)
        .map(|i| {
            route(
                format!("r{i}"),
                vec![cond("k", MatchOp::Exact(i.to_string()), false)],
            )
        })
        .collect();
    assert_eq!(RouteTable::new(few, Vec::new()).index_key(None), None);
    let both: Vec<Route> = (0..MIN_INDEXED_ROUTES)
        .map(|i| {
            route(
                format!("r{i}"),
                vec![
                    cond("b", MatchOp::Exact(i.to_string()), false),
                    cond("a", MatchOp::Exact(i.to_string()), false),
                ],
            )
        })
        .collect();
    assert_eq!(RouteTable::new(both, Vec::new()).index_key(None), Some("a"));
}

#[test]
fn ten_thousand_routes_find_the_last() {
    let routes: Vec<Route> = (0..10_000)
        .map(|i| {
            route(
                format!("r{i}"),
                vec![cond(":path", MatchOp::Exact(format!("/svc/{i}")), false)],
            )
        })
        .collect();
    let table = RouteTable::new(routes, Vec::new());
    let m: Metadata = [(":path", "/svc/9999")].into_iter().collect();
    assert_eq!(table.find(&m).map(|r| &*r.name), Some("r9999"));
    let m: Metadata = [(":path", "/svc/10000")].into_iter().collect();
    assert!(table.find(&m).is_none());
}

/// The virtual host selection the table made before it was indexed.
fn linear_virtual_host(vhosts: &[VirtualHost], host: &str) -> Option<usize> {
    let host = match host.strip_prefix('[') {
        Some(_) => host.find(']').map_or(host, |i| &host[..=i]),
        None => match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        },
    }
    .to_ascii_lowercase();
    let exact = vhosts.iter().position(|v| {
        v.hosts
            .iter()
            .any(|h| matches!(h, HostMatch::Exact(e) if *e == host))
    });
    if exact.is_some() {
        return exact;
    }
    let mut best: Option<(usize, usize)> = None;
    for (pos, v) in vhosts.iter().enumerate() {
        for h in &v.hosts {
            if let HostMatch::Suffix(s) = h
                && host.ends_with(s.as_str())
                && host.len() > s.len()
                && best.is_none_or(|(_, len)| s.len() > len)
            {
                best = Some((pos, s.len()));
            }
        }
    }
    if let Some((pos, _)) = best {
        return Some(pos);
    }
    vhosts
        .iter()
        .position(|v| v.hosts.contains(&HostMatch::Any))
}

const HOST_NAMES: [&str; 12] = [
    "a.example.com",
    "A.Example.com",
    "b.example.com",
    "*.example.com",
    "*.api.example.com",
    "*example.com",
    "*-api.example.com",
    "*.com",
    "*",
    "[::1]",
    "",
    "example.com",
];

const REQUEST_HOSTS: [&str; 16] = [
    "a.example.com",
    "A.EXAMPLE.COM:8080",
    "b.example.com:99",
    "x.api.example.com",
    "api.example.com",
    "example.com",
    ".example.com",
    "myexample.com",
    "foo-api.example.com",
    "x.com",
    "com",
    "[::1]:80",
    "[::1",
    "",
    "host:notaport",
    "é.example.com",
];

#[test]
fn indexed_virtual_hosts_match_the_linear_selection() {
    let mut rng = fastrand::Rng::with_seed(5);
    for _ in 0..300 {
        let vhosts: Vec<VirtualHost> = (0..rng.usize(..7))
            .map(|i| VirtualHost {
                name: Arc::from(format!("v{i}")),
                hosts: (0..rng.usize(1..4))
                    .map(|_| HostMatch::parse(pick(&mut rng, &HOST_NAMES)))
                    .collect(),
                routes: random_routes(&mut rng, &format!("v{i}-")),
            })
            .collect();
        let table = RouteTable::new(Vec::new(), vhosts);
        for host in REQUEST_HOSTS {
            let expected = linear_virtual_host(table.virtual_hosts(), host);
            let got = table
                .virtual_host(host)
                .map(|v| v.name.trim_start_matches('v').parse::<usize>().unwrap());
            assert_eq!(
                got,
                expected,
                "host {host:?} in {:?}",
                table.virtual_hosts()
            );
            for _ in 0..20 {
                let mut req = random_request(&mut rng);
                req.insert(HOST_KEY, host);
                let want = expected.and_then(|pos| scan(&table.virtual_hosts()[pos].routes, &req));
                assert!(same(table.find(&req), want), "request {req:?}");
            }
        }
    }
}
