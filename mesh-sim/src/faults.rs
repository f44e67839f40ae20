//! Faults injected on demand, so tests can drive retries, backoff and
//! conflict handling through the real HTTP path.
//!
//! A [`Faults`] value is a list of rules. Each rule says which requests it
//! concerns (verb, resource, optionally an object name), what happens to them
//! (an error status, added latency, a 409 conflict, a watch cut short) and
//! when (always, the next N matching requests, every Nth, the first N per
//! object, or at a seeded random rate). Deterministic triggers are what tests
//! want; the rate exists for soak runs and stays reproducible through its seed.
//!
//! ```text
//! request ─> authn ─> authz ─> FaultState::decide ─┬─> sleep(latency)
//!                                                  ├─> error Status (429 + Retry-After, 500, 503, 409)
//!                                                  └─> handler (watch cut after N events)
//!                                                       └─> stored, then an error Status (after store)
//! ```
//!
//! [`file`] reads the same rules from YAML, for `mesh-sim serve --faults`.

pub mod file;

use std::collections::HashMap;
use std::time::Duration;

use crate::error::ApiError;

/// What a matching request suffers.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultEffect {
    /// Answer with this status code instead of serving the request (429,
    /// 500, 503, ...); 429 carries `Retry-After`.
    Error { code: u16, retry_after_seconds: u64 },
    /// Serve the request (a write is stored and its watchers told), then
    /// answer this status instead of the result, as an API server that
    /// fails after its storage accepted a write does. Watches are not
    /// affected.
    ErrorAfterStore { code: u16, retry_after_seconds: u64 },
    /// Serve the request after this much extra (wall-clock) time.
    Latency(Duration),
    /// Answer 409 Conflict, as a write with a stale `resourceVersion` gets.
    Conflict,
    /// End a watch stream after this many events.
    CutWatchAfter(usize),
}

/// When a matching request suffers the effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    Always,
    /// The next N matching requests, then never again.
    Next(u32),
    /// Every Nth matching request (the Nth, the 2Nth, ...).
    EveryNth(u32),
    /// The first N matching requests for each object (by namespace and name).
    FirstPerObject(u32),
    /// Each matching request with this probability, from the faults' seed.
    Rate(f64),
}

/// One fault: which requests, what effect, when.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or `*`.
    pub verb: String,
    /// A plural (`deployments`), a plural with subresource
    /// (`deployments/scale`), or `*`.
    pub resource: String,
    /// Only requests for this object name, when set.
    pub name: Option<String>,
    /// Only requests in this namespace, when set.
    pub namespace: Option<String>,
    pub effect: FaultEffect,
    pub trigger: Trigger,
}

impl FaultRule {
    /// A rule for `verb` on `resource` that, until told otherwise, always
    /// answers 500.
    pub fn on(verb: &str, resource: &str) -> Self {
        FaultRule {
            verb: verb.to_string(),
            resource: resource.to_string(),
            name: None,
            namespace: None,
            effect: FaultEffect::Error {
                code: 500,
                retry_after_seconds: 1,
            },
            trigger: Trigger::Always,
        }
    }

    /// Only requests for the object called `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Only requests in `namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// Answer `code` (429 and 503 get a one-second `Retry-After`).
    pub fn error(self, code: u16) -> Self {
        self.error_with_retry_after(code, 1)
    }

    /// Answer `code`; a 429 or 503 carries `Retry-After: seconds`.
    pub fn error_with_retry_after(mut self, code: u16, retry_after_seconds: u64) -> Self {
        self.effect = FaultEffect::Error {
            code,
            retry_after_seconds,
        };
        self
    }

    /// Serve the request, then answer `code` (`Retry-After: seconds` on a
    /// 429 or 503): the write is stored although the client sees an error.
    pub fn error_after_store(mut self, code: u16, retry_after_seconds: u64) -> Self {
        self.effect = FaultEffect::ErrorAfterStore {
            code,
            retry_after_seconds,
        };
        self
    }

    /// Answer 429 Too Many Requests with `Retry-After: seconds`.
    pub fn throttle(mut self, retry_after_seconds: u64) -> Self {
        self.effect = FaultEffect::Error {
            code: 429,
            retry_after_seconds,
        };
        self
    }

    pub fn latency(mut self, by: Duration) -> Self {
        self.effect = FaultEffect::Latency(by);
        self
    }

    pub fn conflict(mut self) -> Self {
        self.effect = FaultEffect::Conflict;
        self
    }

    pub fn cut_watch_after(mut self, events: usize) -> Self {
        self.effect = FaultEffect::CutWatchAfter(events);
        self
    }

    /// Only the next `n` matching requests.
    pub fn next(mut self, n: u32) -> Self {
        self.trigger = Trigger::Next(n);
        self
    }

    /// Every `n`th matching request.
    pub fn every_nth(mut self, n: u32) -> Self {
        self.trigger = Trigger::EveryNth(n.max(1));
        self
    }

    /// The first `n` matching requests of each object.
    pub fn first_per_object(mut self, n: u32) -> Self {
        self.trigger = Trigger::FirstPerObject(n);
        self
    }

    /// A share (0.0 to 1.0) of matching requests, drawn from the seed.
    pub fn rate(mut self, share: f64) -> Self {
        self.trigger = Trigger::Rate(share.clamp(0.0, 1.0));
        self
    }

    fn matches(&self, request: &FaultRequest<'_>) -> bool {
        (self.verb == "*" || self.verb == request.verb)
            && (self.resource == "*" || self.resource == request.resource)
            && self.name.as_deref().is_none_or(|n| Some(n) == request.name)
            && self
                .namespace
                .as_deref()
                .is_none_or(|n| Some(n) == request.namespace)
    }
}

/// The faults a server currently injects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    pub rules: Vec<FaultRule>,
    /// Seed of the generator behind [`Trigger::Rate`].
    pub seed: u64,
}

impl Faults {
    pub fn new() -> Self {
        Faults::default()
    }

    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The next `n` requests of `verb` on `resource` fail with `code`.
    pub fn fail_next(self, verb: &str, resource: &str, n: u32, code: u16) -> Self {
        self.rule(FaultRule::on(verb, resource).error(code).next(n))
    }

    /// The first `n` updates and patches of each object of `resource` get 409.
    pub fn conflict_first_writes(self, resource: &str, n: u32) -> Self {
        self.rule(
            FaultRule::on("update", resource)
                .conflict()
                .first_per_object(n),
        )
        .rule(
            FaultRule::on("patch", resource)
                .conflict()
                .first_per_object(n),
        )
    }
}

/// The request a fault decision is about.
#[derive(Debug, Clone, Copy)]
pub struct FaultRequest<'a> {
    pub verb: &'a str,
    /// `plural` or `plural/subresource`.
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// What happens to one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub latency: Duration,
    pub error: Option<ApiError>,
    /// Answered instead of a successful result, after the request was served.
    pub error_after_store: Option<ApiError>,
    pub cut_watch_after: Option<usize>,
}

/// Faults plus the counters their triggers need; lives in the server.
#[derive(Debug, Default)]
pub struct FaultState {
    faults: Faults,
    matched: Vec<u64>,
    /// Per rule and object (resource, namespace, name): matches so far.
    per_object: HashMap<(usize, String, String, String), u32>,
    rng: u64,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        let rng = faults.seed ^ 0x2545_F491_4F6C_DD1D;
        FaultState {
            matched: vec![0; faults.rules.len()],
            faults,
            per_object: HashMap::new(),
            rng,
        }
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Counts `request` against every rule and says what it suffers.
    pub fn decide(&mut self, request: &FaultRequest<'_>) -> Decision {
        let mut decision = Decision::default();
        for index in 0..self.faults.rules.len() {
            if !self.faults.rules[index].matches(request) {
                continue;
            }
            self.matched[index] += 1;
            if !self.fires(index, request) {
                continue;
            }
            let rule = &self.faults.rules[index];
            match &rule.effect {
                FaultEffect::Latency(by) => decision.latency += *by,
                FaultEffect::CutWatchAfter(n) => {
                    decision.cut_watch_after =
                        Some(decision.cut_watch_after.map_or(*n, |m| m.min(*n)));
                }
                FaultEffect::Error {
                    code,
                    retry_after_seconds,
                } if decision.error.is_none() => {
                    decision.error = Some(error_for(*code, *retry_after_seconds));
                }
                FaultEffect::Conflict if decision.error.is_none() => {
                    let plural = request
                        .resource
                        .split('/')
                        .next()
                        .unwrap_or(request.resource);
                    decision.error = Some(ApiError::conflict(
                        plural,
                        request.name.unwrap_or(""),
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                FaultEffect::ErrorAfterStore {
                    code,
                    retry_after_seconds,
                } if decision.error_after_store.is_none() => {
                    decision.error_after_store = Some(error_for(*code, *retry_after_seconds));
                }
                FaultEffect::Error { .. }
                | FaultEffect::Conflict
                | FaultEffect::ErrorAfterStore { .. } => {}
            }
        }
        decision
    }

    fn fires(&mut self, index: usize, request: &FaultRequest<'_>) -> bool {
        let count = self.matched[index];
        match self.faults.rules[index].trigger {
            Trigger::Always => true,
            Trigger::Next(n) => count <= u64::from(n),
            Trigger::EveryNth(n) => count % u64::from(n.max(1)) == 0,
            Trigger::FirstPerObject(n) => {
                let key = (
                    index,
                    request.resource.to_string(),
                    request.namespace.unwrap_or("").to_string(),
                    request.name.unwrap_or("").to_string(),
                );
                let seen = self.per_object.entry(key).or_insert(0);
                *seen += 1;
                *seen <= n
            }
            Trigger::Rate(share) => self.next_unit() < share,
        }
    }

    /// A uniform number in [0, 1) from a splitmix64 sequence.
    fn next_unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn error_for(code: u16, retry_after_seconds: u64) -> ApiError {
    match code {
        429 => ApiError::too_many_requests(retry_after_seconds),
        503 => {
            let mut e =
                ApiError::unavailable("the server is currently unable to handle the request");
            e.retry_after = Some(retry_after_seconds);
            e
        }
        _ => {
            let mut e = ApiError::internal(
                "an error on the server (injected fault) has prevented the request from succeeding",
            );
            e.code = code;
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(verb: &'a str, resource: &'a str, name: Option<&'a str>) -> FaultRequest<'a> {
        FaultRequest {
            verb,
            resource,
            namespace: Some("shop"),
            name,
        }
    }

    fn codes(
        state: &mut FaultState,
        verb: &str,
        resource: &str,
        name: Option<&str>,
        times: usize,
    ) -> Vec<u16> {
        (0..times)
            .map(|_| {
                state
                    .decide(&req(verb, resource, name))
                    .error
                    .map_or(200, |e| e.code)
            })
            .collect()
    }

    #[test]
    fn next_n_fails_exactly_the_next_n_matching_requests() {
        let mut state = FaultState::new(Faults::new().fail_next("patch", "deployments", 2, 429));
        assert_eq!(codes(&mut state, "get", "deployments", None, 1), [200]);
        assert_eq!(
            codes(&mut state, "patch", "deployments", None, 3),
            [429, 429, 200]
        );
        let e = FaultState::new(Faults::new().fail_next("*", "*", 1, 429))
            .decide(&req("get", "pods", None))
            .error
            .unwrap();
        assert_eq!(e.retry_after, Some(1));
    }

    #[test]
    fn a_namespace_rule_spares_other_namespaces_and_after_store_errors_are_kept_apart() {
        let mut state = FaultState::new(
            Faults::new()
                .rule(FaultRule::on("patch", "*").namespace("pay").error(503))
                .rule(FaultRule::on("patch", "deployments").error_after_store(500, 0)),
        );
        let d = state.decide(&req("patch", "deployments", Some("web")));
        assert!(d.error.is_none(), "shop is not pay");
        assert_eq!(d.error_after_store.map(|e| e.code), Some(500));
        let d = state.decide(&FaultRequest {
            namespace: Some("pay"),
            ..req("patch", "deployments", Some("web"))
        });
        assert_eq!(
            d.error.map(|e| (e.code, e.retry_after)),
            Some((503, Some(1)))
        );
    }

    #[test]
    fn first_writes_per_object_count_each_resource_apart() {
        let mut state = FaultState::new(Faults::new().conflict_first_writes("*", 1));
        assert_eq!(
            codes(&mut state, "patch", "deployments", Some("web"), 2),
            [409, 200]
        );
        assert_eq!(
            codes(&mut state, "patch", "services", Some("web"), 2),
            [409, 200]
        );
    }

    #[test]
    fn every_nth_fails_the_nth_requests() {
        let mut state = FaultState::new(
            Faults::new().rule(FaultRule::on("list", "pods").error(503).every_nth(3)),
        );
        assert_eq!(
            codes(&mut state, "list", "pods", None, 6),
            [200, 200, 503, 200, 200, 503]
        );
    }

    #[test]
    fn first_writes_of_each_object_conflict_once() {
        let mut state = FaultState::new(Faults::new().conflict_first_writes("deployments", 1));
        assert_eq!(
            codes(&mut state, "patch", "deployments", Some("a"), 2),
            [409, 200]
        );
        assert_eq!(
            codes(&mut state, "update", "deployments", Some("b"), 2),
            [409, 200]
        );
        assert_eq!(
            codes(&mut state, "patch", "deployments", Some("b"), 1),
            [409]
        );
    }

    #[test]
    fn rate_is_reproducible_from_the_seed() {
        let faults = Faults::new()
            .seed(7)
            .rule(FaultRule::on("*", "*").error(500).rate(0.5));
        let a = codes(
            &mut FaultState::new(faults.clone()),
            "get",
            "pods",
            None,
            64,
        );
        let b = codes(&mut FaultState::new(faults), "get", "pods", None, 64);
        assert_eq!(a, b);
        let failures = a.iter().filter(|c| **c == 500).count();
        assert!((16..=48).contains(&failures), "{failures} of 64 failed");
    }

    #[test]
    fn latency_adds_up_and_watch_cut_takes_the_smallest() {
        let faults = Faults::new()
            .rule(FaultRule::on("*", "pods").latency(Duration::from_millis(5)))
            .rule(FaultRule::on("watch", "pods").latency(Duration::from_millis(7)))
            .rule(FaultRule::on("watch", "pods").cut_watch_after(4))
            .rule(FaultRule::on("watch", "*").cut_watch_after(2))
            .rule(
                FaultRule::on("watch", "pods")
                    .name("other")
                    .cut_watch_after(1),
            );
        let d = FaultState::new(faults).decide(&req("watch", "pods", Some("p")));
        assert_eq!(d.latency, Duration::from_millis(12));
        assert_eq!(d.cut_watch_after, Some(2));
        assert!(d.error.is_none());
    }
}
