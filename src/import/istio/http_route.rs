//! One VirtualService HTTP route: its matches as conditions, its action
//! (destinations, redirect, rewrite, retries, fault, mirror, headers).

use serde_json::{Value, json};

use super::*;
use crate::xds::regex_escape;

impl Importer {
    /// One HTTP route: a route of ours per `match` alternative.
    pub(super) fn http_route(
        &mut self,
        path: &str,
        vs: &str,
        index: usize,
        r: &HttpRoute,
        namespace: &str,
    ) -> (Vec<Value>, bool) {
        self.notes.other(path, &r.other);
        let name = r.name.clone().unwrap_or_else(|| format!("{vs}-{index}"));
        let mut action = serde_json::Map::new();
        if let Some(rd) = &r.redirect {
            self.notes.other(&format!("{path}.redirect"), &rd.other);
            let mut x = serde_json::Map::new();
            put(&mut x, "path", rd.uri.as_ref());
            put(&mut x, "host", rd.authority.as_ref());
            put(&mut x, "port", rd.port);
            put(&mut x, "scheme", rd.scheme.as_ref());
            x.insert("code".into(), json!(rd.redirect_code.unwrap_or(301)));
            action.insert("redirect".into(), Value::Object(x));
        } else {
            let mut dests = Vec::new();
            for (j, d) in r.route.iter().enumerate() {
                let dpath = format!("{path}.route[{j}]");
                self.notes.other(&dpath, &d.other);
                self.notes.unsupported(
                    &format!("{dpath}.headers"),
                    d.headers.is_some() && r.route.len() > 1,
                    "header changes per destination of a split are not carried (give them on the route)",
                );
                let (cluster, subset) = self.destination(
                    &format!("{dpath}.destination"),
                    &d.destination,
                    namespace,
                    "http",
                );
                let mut t = json!({ "cluster": cluster, "weight": d.weight.unwrap_or(if r.route.len() == 1 { 100 } else { 0 }) });
                if let Some(s) = subset {
                    t["subset"] = json!(s);
                }
                dests.push(t);
            }
            match dests.as_slice() {
                [] => {
                    self.notes.add(
                        path,
                        "a route without destination or redirect is not imported",
                    );
                    return (Vec::new(), false);
                }
                [one] => {
                    action.insert("cluster".into(), one["cluster"].clone());
                    if let Some(s) = one.get("subset") {
                        action.insert("subset".into(), s.clone());
                    }
                }
                _ => {
                    action.insert("weighted".into(), json!(dests));
                }
            }
        }
        put(&mut action, "timeout", r.timeout.as_ref());
        if let Some(rt) = &r.retries {
            self.notes.other(&format!("{path}.retries"), &rt.other);
            let mut x = json!({ "attempts": rt.attempts.unwrap_or(2) });
            if let Some(p) = &rt.per_try_timeout {
                x["per_try_timeout"] = json!(p);
            }
            if let Some(on) = &rt.retry_on {
                let mut list: Vec<&str> = Vec::new();
                for c in on.split(',').map(str::trim) {
                    let ours: &[&str] = match c {
                        "5xx" => &["server-error", "unavailable"],
                        "gateway-error" | "unavailable" => &["unavailable"],
                        "connect-failure" => &["connect-failure"],
                        "reset" | "refused-stream" => &["reset"],
                        "deadline-exceeded" => &["timeout"],
                        other => {
                            self.notes.add(
                                format!("{path}.retries.retryOn"),
                                format!("condition `{other}` is not carried"),
                            );
                            &[]
                        }
                    };
                    for o in ours {
                        if !list.contains(o) {
                            list.push(o);
                        }
                    }
                }
                x["on"] = json!(list);
            }
            action.insert("retries".into(), x);
        }
        let mirror = self.mirror(
            path,
            r.mirror.as_ref(),
            r.mirror_percentage.as_ref(),
            namespace,
            "http",
        );
        if let Some(x) = mirror {
            action.insert("mirror".into(), x);
        }
        let mut exact_uri = None;
        if let Some(rw) = &r.rewrite {
            self.notes.other(&format!("{path}.rewrite"), &rw.other);
            let mut x = serde_json::Map::new();
            put(&mut x, "host", rw.authority.as_ref());
            if let Some(rr) = &rw.uri_regex_rewrite {
                self.notes
                    .other(&format!("{path}.rewrite.uriRegexRewrite"), &rr.other);
                x.insert(
                    "regex".into(),
                    json!({ "pattern": rr.pattern, "substitution": rr.rewrite }),
                );
            }
            if let Some(u) = &rw.uri {
                exact_uri = Some(u.clone());
                x.insert("prefix".into(), json!(u));
            }
            action.insert("rewrite".into(), Value::Object(x));
        }
        let mut fault = None;
        if let Some(f) = &r.fault {
            self.notes.other(&format!("{path}.fault"), &f.other);
            let mut x = serde_json::Map::new();
            if let Some(d) = &f.delay {
                self.notes.other(&format!("{path}.fault.delay"), &d.other);
                let pct = percent(
                    &mut self.notes,
                    &format!("{path}.fault.delay.percentage"),
                    d.percentage.as_ref(),
                );
                if let Some(fixed) = &d.fixed_delay {
                    x.insert("delay".into(), json!({ "fixed": fixed, "percentage": pct }));
                }
            }
            if let Some(a) = &f.abort {
                self.notes.other(&format!("{path}.fault.abort"), &a.other);
                let pct = percent(
                    &mut self.notes,
                    &format!("{path}.fault.abort.percentage"),
                    a.percentage.as_ref(),
                );
                if let Some(status) = a.http_status {
                    x.insert(
                        "abort".into(),
                        json!({ "http_status": status, "percentage": pct }),
                    );
                }
            }
            fault = Some(Value::Object(x));
        }
        let (request_headers, response_headers) = self.headers(path, r);
        // One route of ours per alternative of the match (first wins).
        let alternatives: Vec<Option<&HttpMatch>> = if r.matches.is_empty() {
            vec![None]
        } else {
            r.matches.iter().map(Some).collect()
        };
        let mut out = Vec::new();
        for (k, m) in alternatives.into_iter().enumerate() {
            let mut conditions = Vec::new();
            let mut action = action.clone();
            if let Some(m) = m {
                let mpath = format!("{path}.match[{k}]");
                conditions = self.conditions(&mpath, m);
                // Istio's uri rewrite replaces a whole exact path.
                if let (Some(u), Some(exact)) =
                    (&exact_uri, m.uri.as_ref().and_then(|u| u.exact.as_ref()))
                    && let Some(Value::Object(rw)) = action.get_mut("rewrite")
                {
                    rw.remove("prefix");
                    rw.insert("regex".into(), json!({ "pattern": format!("^{}$", regex_escape(exact)), "substitution": u }));
                }
            }
            let mut route = json!({
                "name": if k == 0 { name.clone() } else { format!("{name}-{k}") },
                "match": conditions,
                "route": Value::Object(action),
            });
            if let Some(h) = &request_headers {
                route["request_headers"] = h.clone();
            }
            if let Some(h) = &response_headers {
                route["response_headers"] = h.clone();
            }
            if let Some(f) = &fault {
                route["filters"] = json!({ "fault": f });
            }
            out.push(route);
        }
        (out, fault.is_some())
    }

    /// A route's header changes (`add` is carried as `set`: the proxy replaces).
    pub(super) fn headers(&mut self, path: &str, r: &HttpRoute) -> (Option<Value>, Option<Value>) {
        // A single destination's changes apply to the route.
        let dest = match r.route.as_slice() {
            [one] => one.headers.as_ref(),
            _ => None,
        };
        let h = r.headers.as_ref().or(dest);
        if let Some(h) = h {
            self.notes.other(&format!("{path}.headers"), &h.other);
        }
        let mut ops = |which: &str, o: Option<&HeaderOperations>| -> Option<Value> {
            let o = o?;
            self.notes
                .other(&format!("{path}.headers.{which}"), &o.other);
            self.notes.unsupported(
                &format!("{path}.headers.{which}.add"),
                !o.add.is_empty(),
                "carried as `set`: the proxy replaces a header instead of adding a value",
            );
            let mut set = o.add.clone();
            set.extend(o.set.clone());
            Some(json!({ "set": set, "remove": o.remove }))
        };
        let request = ops("request", h.and_then(|h| h.request.as_ref()));
        let response = ops("response", h.and_then(|h| h.response.as_ref()));
        (request, response)
    }

    /// The conditions of one match alternative.
    pub(super) fn conditions(&mut self, path: &str, m: &HttpMatch) -> Vec<Value> {
        self.notes.other(path, &m.other);
        self.notes.unsupported(
            &format!("{path}.port"),
            m.port.is_some(),
            "not carried: routes apply to their listener's port",
        );
        self.notes.unsupported(
            &format!("{path}.gateways"),
            !m.gateways.is_empty(),
            "not carried: the route applies on every listener of the VirtualService",
        );
        self.notes.unsupported(
            &format!("{path}.ignoreUriCase"),
            m.ignore_uri_case,
            "not carried: paths match case-sensitively",
        );
        let mut out = Vec::new();
        if let Some(u) = &m.uri {
            // A prefix on `:path` (so a prefix rewrite finds it), a whole
            // path or regex on the path without the query, as Istio.
            if let Some(p) = &u.prefix {
                if p != "/" {
                    out.push(json!({ "key": ":path", "prefix": p }));
                }
            } else {
                out.extend(self.string_match(&format!("{path}.uri"), ":path_only", u, false));
            }
        }
        for (key, sm) in [
            (":method", &m.method),
            (":authority", &m.authority),
            (":scheme", &m.scheme),
        ] {
            if let Some(sm) = sm {
                out.extend(self.string_match(&format!("{path}.{key}"), key, sm, false));
            }
        }
        for (h, sm) in &m.headers {
            out.extend(self.string_match(
                &format!("{path}.headers.{h}"),
                &h.to_ascii_lowercase(),
                sm,
                false,
            ));
        }
        for (q, sm) in &m.query_params {
            out.extend(self.string_match(
                &format!("{path}.queryParams.{q}"),
                &format!("query.{q}"),
                sm,
                false,
            ));
        }
        for (h, sm) in &m.without_headers {
            out.extend(self.string_match(
                &format!("{path}.withoutHeaders.{h}"),
                &h.to_ascii_lowercase(),
                sm,
                true,
            ));
        }
        out
    }

    /// A condition from a string match (an empty match: present).
    pub(super) fn string_match(
        &mut self,
        path: &str,
        key: &str,
        sm: &StringMatch,
        invert: bool,
    ) -> Option<Value> {
        self.notes.other(path, &sm.other);
        let mut c = match (&sm.exact, &sm.prefix, &sm.regex) {
            (Some(v), _, _) => json!({ "key": key, "exact": v }),
            (_, Some(v), _) => json!({ "key": key, "prefix": v }),
            (_, _, Some(v)) => json!({ "key": key, "regex": v }),
            _ => json!({ "key": key, "present": true }),
        };
        if invert {
            c["invert"] = json!(true);
        }
        Some(c)
    }
}
