//! Prometheus metrics (SPEC §10), served in the text exposition format on
//! `metrics.listen`.
//!
//! Labels stay bounded: endpoints, statuses, grant types, reasons and caches are small
//! fixed sets, and tenants are named in labels only for the first
//! [`MAX_TENANT_LABELS`] seen; the rest are counted under `tenant="other"`. So 10,000
//! tenants cost what 1,000 do.

use super::Gateway;
use dashmap::DashSet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

/// Most tenants named in labels.
const MAX_TENANT_LABELS: usize = 1_000;
/// What the tenants past that bound are counted as.
const OTHER_TENANTS: &str = "other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    tenant: Arc<str>,
    endpoint: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuedLabels {
    tenant: Arc<str>,
    grant_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RevokedLabels {
    tenant: Arc<str>,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: Arc<str>,
}

/// Which cache a lookup went to.
#[derive(Debug, Clone, Copy)]
pub enum Cache {
    Token,
    User,
    Client,
    SigningKeys,
}

impl Cache {
    /// In declaration order, so that `cache as usize` indexes what this makes.
    const ALL: [Cache; 4] = [Cache::Token, Cache::User, Cache::Client, Cache::SigningKeys];

    fn label(self) -> &'static str {
        match self {
            Cache::Token => "token",
            Cache::User => "user",
            Cache::Client => "client",
            Cache::SigningKeys => "signing_keys",
        }
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// Every cache's hit and miss counters, looked up once: a request counts two or
    /// three lookups, and the family's map would hash their labels each time.
    cache: [[Counter; 2]; 4],
    issued: Family<IssuedLabels, Counter>,
    revoked: Family<RevokedLabels, Counter>,
    locked: Family<TenantLabels, Gauge>,
    invalidation_delay: Histogram,
    channel_up: Gauge,
    /// The tenants named in labels, each label shared by every series that names it.
    named_tenants: DashSet<Arc<str>>,
    other_tenants: Arc<str>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~3.3 s.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::default();
        registry.register(
            "requests",
            "Requests answered, by tenant, endpoint and status",
            requests.clone(),
        );
        let durations = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by endpoint",
            durations.clone(),
        );
        let cache_family = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_requests",
            "Cache lookups by cache (token, user, client) and result (hit, miss)",
            cache_family.clone(),
        );
        let cache = Cache::ALL.map(|cache| {
            ["miss", "hit"].map(|result| {
                let labels = CacheLabels {
                    cache: cache.label(),
                    result,
                };
                cache_family.get_or_create(&labels).clone()
            })
        });
        let issued = Family::default();
        registry.register(
            "tokens_issued",
            "Token responses, by tenant and grant type",
            issued.clone(),
        );
        let revoked = Family::default();
        registry.register(
            "tokens_revoked",
            "Tokens moved to REVOKED, by tenant and reason",
            revoked.clone(),
        );
        let locked = Family::default();
        registry.register(
            "locked_accounts",
            "Users and clients locked now, by tenant",
            locked.clone(),
        );
        let invalidation_delay = latency_histogram();
        registry.register(
            "invalidation_delay_seconds",
            "From a change's commit on any instance to its notice applied here",
            invalidation_delay.clone(),
        );
        let channel_up = Gauge::default();
        registry.register(
            "invalidation_channel_up",
            "1 while the caches may answer (always on SQLite), 0 while every lookup reads the database",
            channel_up.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            cache,
            issued,
            revoked,
            locked,
            invalidation_delay,
            channel_up,
            named_tenants: DashSet::new(),
            other_tenants: Arc::from(OTHER_TENANTS),
        }
    }
}

impl Metrics {
    /// The label for `tenant`: its domain while the bound allows, `other` past it. A
    /// label already named is shared, not copied.
    fn tenant_label(&self, tenant: &str) -> Arc<str> {
        if let Some(known) = self.named_tenants.get(tenant) {
            return known.clone();
        }
        if self.named_tenants.len() < MAX_TENANT_LABELS {
            let label: Arc<str> = Arc::from(tenant);
            self.named_tenants.insert(label.clone());
            return label;
        }
        self.other_tenants.clone()
    }

    pub fn request(&self, tenant: &str, endpoint: &'static str, status: u16, took: Duration) {
        let labels = RequestLabels {
            tenant: self.tenant_label(tenant),
            endpoint,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&EndpointLabels { endpoint })
            .observe(took.as_secs_f64());
    }

    pub fn cache_lookup(&self, cache: Cache, hit: bool) {
        self.cache[cache as usize][usize::from(hit)].inc();
    }

    pub fn issued(&self, tenant: &str, grant_type: &'static str) {
        let labels = IssuedLabels {
            tenant: self.tenant_label(tenant),
            grant_type,
        };
        self.issued.get_or_create(&labels).inc();
    }

    pub fn revoked(&self, tenant: &str, reason: &'static str, tokens: usize) {
        if tokens == 0 {
            return;
        }
        let labels = RevokedLabels {
            tenant: self.tenant_label(tenant),
            reason,
        };
        self.revoked.get_or_create(&labels).inc_by(tokens as u64);
    }

    pub fn invalidation_delay(&self, delay: Duration) {
        self.invalidation_delay.observe(delay.as_secs_f64());
    }
}

impl Gateway {
    /// The metrics as Prometheus text, with the gauges read now.
    pub async fn render_metrics(&self) -> String {
        let metrics = &self.metrics;
        metrics.channel_up.set(i64::from(self.freshness.trusted()));
        match self.store.locked_accounts(super::now()).await {
            Ok(counts) => {
                metrics.locked.clear();
                for (tenant_id, count) in counts {
                    let Some(tenant) = self.directory.tenant_by_id(tenant_id) else {
                        continue;
                    };
                    let labels = TenantLabels {
                        tenant: metrics.tenant_label(tenant.domain.as_str()),
                    };
                    metrics.locked.get_or_create(&labels).inc_by(count);
                }
            }
            // The other metrics are still worth having; the gauge keeps its last value.
            Err(e) => tracing::warn!(error = %e, "could not count locked accounts"),
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &metrics.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_past_the_bound_are_counted_as_other() {
        let metrics = Metrics::default();
        for i in 0..MAX_TENANT_LABELS + 500 {
            metrics.issued(&format!("t{i}.example"), "client_credentials");
        }
        metrics.issued("t0.example", "client_credentials");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &metrics.registry).unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("portcullis_tokens_issued_total{"))
            .count();
        assert_eq!(series, MAX_TENANT_LABELS + 1);
        assert!(text.contains(
            "portcullis_tokens_issued_total{tenant=\"other\",grant_type=\"client_credentials\"} 500"
        ));
        assert!(text.contains(
            "portcullis_tokens_issued_total{tenant=\"t0.example\",grant_type=\"client_credentials\"} 2"
        ));
    }
}
