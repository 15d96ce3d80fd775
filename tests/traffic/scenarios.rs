//! The scenarios of issue #5, each written once for any [`Flavor`].

use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::http::Http;
use super::{
    Client, FailureKind, Flavor, Load, Record, Run, Spec, Tally, Upstream, sample, wait_until,
};

const SETTLE: Duration = Duration::from_secs(15);

fn refs<U: Upstream>(ups: &[U]) -> Vec<&dyn Upstream> {
    ups.iter().map(|u| u as &dyn Upstream).collect()
}

fn tally(records: &[Record]) -> Tally {
    let mut t = Tally::default();
    for r in records {
        t.add(&r.result);
    }
    t
}

/// The last lines of the proxy's log, for failure messages.
fn tail(run: &Run) -> String {
    let logs = run.proxy.logs();
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// No client-visible failure where the proxy may retry, apart from the
/// rare call whose answer had already begun when its upstream died (no
/// proxy can replay an answer it has started forwarding); otherwise only
/// the failures of calls caught by the outage ("unavailable" answers, or a
/// stream reset when the upstream died mid-answer), and few of them.
fn assert_outage_hidden<P: Flavor>(records: &[Record], run: &Run) {
    let t = tally(records);
    if P::REPLAYABLE {
        let mid_answer = records
            .iter()
            .filter(|r| matches!(&r.result, Err(f) if f.kind == FailureKind::MidAnswer))
            .count();
        assert_eq!(
            t.failed() - mid_answer,
            0,
            "{}: client-visible failures: {t:?}\n{}",
            P::NAME,
            tail(run)
        );
        assert!(
            mid_answer * 100 <= t.ok() + t.failed(),
            "{}: more than 1% broke off mid-answer: {t:?}",
            P::NAME
        );
        return;
    }
    for r in records {
        if let Err(f) = &r.result {
            assert!(
                matches!(
                    f.kind,
                    FailureKind::Unavailable | FailureKind::MidAnswer | FailureKind::Other
                ),
                "{}: {f:?}",
                P::NAME
            );
        }
    }
    if t.failed() > 0 {
        eprintln!(
            "{}: failures caught by the outage: {:?}",
            P::NAME,
            t.failures
        );
    }
    assert!(
        t.failed() * 20 <= t.ok() + t.failed(),
        "{}: more than 5% failed: {t:?}",
        P::NAME
    );
}

/// Kill one of three upstreams under steady load: no client-visible failure
/// (retries), `/clusters` shows it out (health check or outlier ejection);
/// restarted on its port, it is readmitted and gets traffic again.
pub fn kill_one_of_three<P: Flavor>() {
    let mut ups = P::start(&Spec::many(&["u1", "u2", "u3"]));
    let run = Run::start::<P>("resilience.yaml", &refs(&ups));
    let load = Load::start::<P>(run.addr(), 4);
    let t0 = Instant::now();
    wait_until(
        "all three upstreams answer",
        SETTLE,
        || load.since(t0).tags.len() == 3,
        || format!("{:?}\n{}", load.since(t0), tail(&run)),
    );

    let (dead, port) = (ups[2].address(), ups[2].port());
    ups[2].kill();
    wait_until(
        "the killed upstream is out (unhealthy or ejected)",
        SETTLE,
        || run.endpoint("backend", &dead).out(),
        || tail(&run),
    );
    let state = run.endpoint("backend", &dead);
    let t_out = Instant::now();
    wait_until(
        "the load goes on without it",
        SETTLE,
        || load.since(t_out).ok() >= 100,
        || format!("{:?}", load.since(t_out)),
    );
    assert!(!load.since(t_out).tags.contains_key(ups[2].tag()));

    ups[2] = P::start(&[Spec::new("u3").on(port)]).pop().unwrap();
    wait_until(
        "the restarted upstream is readmitted",
        SETTLE,
        || !run.endpoint("backend", &dead).out(),
        || format!("{:?}\n{}", run.endpoint("backend", &dead), tail(&run)),
    );
    let t_back = Instant::now();
    wait_until(
        "the restarted upstream gets traffic again",
        SETTLE,
        || load.since(t_back).tags.contains_key(ups[2].tag()),
        || format!("{:?}", load.since(t_back)),
    );
    let records = load.stop();
    eprintln!(
        "{}: {} calls; the dead endpoint was out: health check {}, ejected {} time(s)",
        P::NAME,
        records.len(),
        if state.healthy { "passing" } else { "failing" },
        state.times_ejected
    );
    assert!(records.len() >= 300, "steady load: {}", records.len());
    assert_outage_hidden::<P>(&records, &run);
}

/// A slow upstream: each try gets 250ms and moves to the other endpoint;
/// a call nobody answers in time gets the protocol's timeout reply within
/// the configured bounds (two tries, under the 1s route timeout). Requests
/// the proxy cannot replay (gRPC) have no per-try timeout: the route's
/// timeout answers them.
pub fn slow_upstream<P: Flavor>() {
    let ups = P::start(&[Spec::new("slow").slow(2000), Spec::new("fast")]);
    let run = Run::start::<P>("timeouts.yaml", &refs(&ups));
    let (per_try, route) = (Duration::from_millis(250), Duration::from_secs(1));
    let slack = Duration::from_millis(500);
    // How long a try on the slow upstream lasts, and when a call gives up.
    let (slow_try, give_up) = if P::REPLAYABLE {
        (per_try, per_try * 2)
    } else {
        (route, route)
    };
    let mut client = P::client(run.addr(), None);
    let mut via_slow = 0;
    for _ in 0..4 {
        let t = Instant::now();
        let result = client.call(None);
        let took = t.elapsed();
        match result {
            Ok(tag) => {
                assert_eq!(tag, "fast", "{}: took {took:?}", P::NAME);
                assert!(took < slow_try + slack, "{}: took {took:?}", P::NAME);
                if took >= slow_try {
                    via_slow += 1;
                }
            }
            Err(f) => {
                // Without replays the slow try's timeout is the answer.
                assert!(!P::REPLAYABLE, "{}: {f:?}\n{}", P::NAME, tail(&run));
                assert_eq!(f.kind, FailureKind::Timeout, "{f:?}");
                assert!(took >= slow_try && took < slow_try + slack, "took {took:?}");
                via_slow += 1;
            }
        }
    }
    assert!(via_slow >= 1, "{}: no call met the slow upstream", P::NAME);

    let t = Instant::now();
    let result = client.slow_call(3000);
    let took = t.elapsed();
    let f = result.expect_err("nobody answers within the timeouts");
    assert_eq!(f.kind, FailureKind::Timeout, "{}: {f:?}", P::NAME);
    assert!(
        took >= give_up && took < route + slack,
        "{}: the timeout reply came after {took:?}",
        P::NAME
    );
}

/// Eight concurrent slow calls against `max_requests: 2`: two are served,
/// six get the over-limit reply at once (counted in
/// `metaproxy_local_replies_total{reason="over_limit"}`), and the permits
/// come back.
pub fn breaker_overflow_counted<P: Flavor>() {
    overflow::<P>();
}

fn overflow<P: Flavor>() {
    let ups = P::start(&[Spec::new("solo")]);
    let run = Run::start::<P>("breaker.yaml", &refs(&ups));
    let addr = run.addr();
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut client = P::client(addr, None);
                barrier.wait();
                let t = Instant::now();
                let result = client.slow_call(800);
                (result, t.elapsed())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let served: Vec<_> = results.iter().filter(|(r, _)| r.is_ok()).collect();
    let over: Vec<_> = results
        .iter()
        .filter(|(r, _)| matches!(r, Err(f) if f.kind == FailureKind::OverLimit))
        .collect();
    assert_eq!(served.len(), 2, "{}: {results:?}\n{}", P::NAME, tail(&run));
    assert_eq!(over.len(), n - 2, "{}: {results:?}", P::NAME);
    for (_, took) in &served {
        assert!(*took >= Duration::from_millis(800), "{took:?}");
    }
    for (_, took) in &over {
        assert!(*took < Duration::from_millis(400), "not fast: {took:?}");
    }
    let metric = "metaproxy_local_replies_total{listener=\"in\",reason=\"over_limit\"}";
    assert_eq!(
        run.metric(metric),
        Some((n - 2) as f64),
        "{}: {metric}",
        P::NAME
    );
    // The permits are back.
    assert_eq!(P::client(addr, None).call(None).unwrap(), "solo");
}

fn zones(t: &Tally) -> BTreeSet<char> {
    t.tags.keys().filter_map(|tag| tag.chars().next()).collect()
}

/// Zone A preferred; drained by a config reload, traffic moves to zone B
/// and back when undrained; with zone A killed under load, traffic moves
/// to zone B without failures and back when zone A is restarted.
pub fn zone_failover<P: Flavor>() {
    let mut ups = P::start(&Spec::many(&["a1", "a2", "b1", "b2"]));
    let run = Run::start::<P>("zones.yaml", &refs(&ups));
    let mut client = P::client(run.addr(), None);
    let a = BTreeSet::from(['a']);
    let b = BTreeSet::from(['b']);

    let t = sample(&mut client, None, 40);
    assert_eq!(
        (zones(&t), t.failed()),
        (a.clone(), 0),
        "{}: {t:?}",
        P::NAME
    );

    let locality = "locality: { zones: [zone-a, zone-b] }";
    assert!(run.config.contains(locality));
    let drained = run.config.replace(
        locality,
        "locality: { zones: [zone-a, zone-b], drain: [zone-a] }",
    );
    run.reload(&drained);
    let t = sample(&mut client, None, 40);
    assert_eq!(
        (zones(&t), t.failed()),
        (b.clone(), 0),
        "{}: {t:?}",
        P::NAME
    );
    let a1 = run.endpoint("backend", &ups[0].address());
    assert!(a1.drained && a1.healthy, "{a1:?}");

    run.reload(&run.config);
    let t = sample(&mut client, None, 40);
    assert_eq!(
        (zones(&t), t.failed()),
        (a.clone(), 0),
        "{}: {t:?}",
        P::NAME
    );
    assert!(!run.endpoint("backend", &ups[0].address()).drained);

    // Zone A goes down under load.
    let load = Load::start::<P>(run.addr(), 2);
    let zone_a: Vec<(String, u16)> = ups[..2].iter().map(|u| (u.address(), u.port())).collect();
    ups[0].kill();
    ups[1].kill();
    wait_until(
        "zone A is out",
        SETTLE,
        || zone_a.iter().all(|(a, _)| run.endpoint("backend", a).out()),
        || tail(&run),
    );
    let t_out = Instant::now();
    wait_until(
        "zone B serves",
        SETTLE,
        || load.since(t_out).ok() >= 40,
        || format!("{:?}", load.since(t_out)),
    );
    assert_eq!(zones(&load.since(t_out)), b, "{:?}", load.since(t_out));

    // Zone A comes back on its ports.
    let restarted = P::start(&[
        Spec::new("a1").on(zone_a[0].1),
        Spec::new("a2").on(zone_a[1].1),
    ]);
    for (i, u) in restarted.into_iter().enumerate() {
        ups[i] = u;
    }
    wait_until(
        "zone A is readmitted",
        SETTLE,
        || {
            zone_a
                .iter()
                .all(|(a, _)| !run.endpoint("backend", a).out())
        },
        || tail(&run),
    );
    let t_back = Instant::now();
    wait_until(
        "zone A serves again",
        SETTLE,
        || load.since(t_back).ok() >= 40,
        || format!("{:?}", load.since(t_back)),
    );
    assert_eq!(zones(&load.since(t_back)), a, "{:?}", load.since(t_back));
    let records = load.stop();
    assert_outage_hidden::<P>(&records, &run);
}

/// The same `user-id` reaches the same upstream for 1000 calls of the real
/// third-party client (the one our client's calls with that key reach);
/// without a key, the same source IP does.
pub fn affinity<P: Flavor>() {
    let ups = P::start(&Spec::many(&["s1", "s2", "s3"]));
    let run = Run::start::<P>("affinity.yaml", &refs(&ups));
    let addr = run.addr();

    // Calls without a key stick by source IP: find a key whose upstream
    // differs from 127.0.0.1's, so a key the proxy failed to read shows.
    let mut client = P::client(addr, None);
    let by_ip = sample(&mut client, None, 5);
    assert_eq!(by_ip.tags.len(), 1, "{}: {by_ip:?}", P::NAME);
    let (key, owner) = (0..64)
        .map(|i| format!("user-{i}"))
        .find_map(|key| {
            let t = sample(&mut client, Some(&key), 1);
            let owner = t.tags.into_keys().next()?;
            (!by_ip.tags.contains_key(&owner)).then_some((key, owner))
        })
        .expect("some key hashes away from the source IP's upstream");
    let t = P::third_party_calls(addr, &key, 1000);
    assert_eq!(t.tags.get(&owner), Some(&1000), "{}: {key}: {t:?}", P::NAME);

    let mut owners = HashSet::new();
    for i in 0..24 {
        let t = sample(&mut client, Some(&format!("user-{i}")), 5);
        assert_eq!(
            (t.ok(), t.tags.len()),
            (5, 1),
            "{}: user-{i}: {t:?}",
            P::NAME
        );
        owners.extend(t.tags.into_keys());
    }
    assert!(owners.len() >= 2, "24 keys on one upstream: {owners:?}");

    let mut owners = HashSet::new();
    for last in 2..=13 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        let t = sample(&mut P::client(addr, Some(ip)), None, 10);
        assert_eq!((t.ok(), t.tags.len()), (10, 1), "{}: {ip}: {t:?}", P::NAME);
        owners.extend(t.tags.into_keys());
    }
    assert!(
        owners.len() >= 2,
        "12 source IPs on one upstream: {owners:?}"
    );
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let t = sample(&mut P::client(addr, Some(ip)), None, 1000);
    assert_eq!((t.ok(), t.tags.len()), (1000, 1), "{}: {t:?}", P::NAME);
}

/// HTTP: the cookie the proxy sets keeps a client on one backend (1000 calls).
pub fn http_cookie_affinity() {
    let ups = Http::start(&Spec::many(&["s1", "s2", "s3"]));
    let run = Run::start::<Http>("cookie_affinity.yaml", &refs(&ups));
    let mut owners = HashSet::new();
    for i in 0..12 {
        let mut client = Http::client(run.addr(), None);
        let owner = client.call(None).expect("first call");
        let set = client.set_cookie.take().expect("the proxy sets a cookie");
        assert!(set.starts_with("sid="), "{set}");
        client.cookie = Some(set.split(';').next().unwrap().to_string());
        let n = if i == 0 { 1000 } else { 20 };
        let t = sample(&mut client, None, n);
        assert_eq!(t.tags.get(&owner), Some(&n), "{:?}: {t:?}", client.cookie);
        assert!(client.set_cookie.is_none(), "a cookie was sent: no new one");
        owners.insert(owner);
    }
    assert!(owners.len() >= 2, "12 sessions on one backend: {owners:?}");
}

/// Reads `f` until it stops changing (the mirror's copies are fire-and-forget).
fn settled(mut f: impl FnMut() -> usize) -> usize {
    let deadline = Instant::now() + SETTLE;
    let mut last = f();
    let mut still = 0;
    while still < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = f();
        still = if now == last { still + 1 } else { 0 };
        last = now;
    }
    last
}

/// A 25% mirror: the shadow gets about a quarter of 1000 calls; the client
/// only ever sees the main upstream.
pub fn mirror_share<P: Flavor>() {
    let ups = P::start(&Spec::many(&["main", "shadow"]));
    let run = Run::start::<P>("mirror.yaml", &refs(&ups));
    let mut client = P::client(run.addr(), None);
    let t = sample(&mut client, None, 1000);
    assert_eq!(t.tags.get("main"), Some(&1000), "{}: {t:?}", P::NAME);
    wait_until(
        "the main upstream logged every call",
        SETTLE,
        || ups[0].calls() == 1000,
        || format!("{}", ups[0].calls()),
    );
    // 25% of 1000: binomial standard deviation ≈ 13.7; accept ±5 of them.
    let shadow = settled(|| ups[1].calls());
    assert!(
        (180..=320).contains(&shadow),
        "{}: the shadow got {shadow} of 1000 copies at 25%",
        P::NAME
    );
}
