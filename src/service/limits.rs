//! Rate limits (SPEC §9), kept per instance with `governor`'s GCRA limiters.
//!
//! - Failed authentications per source address and minute: each failure takes a cell;
//!   once an address has none left it is refused (429) before any hashing until the
//!   next cell is due. IPv6 addresses count per /64, the block one host usually holds.
//! - Token, introspection and revocation requests per second, per tenant (checked
//!   before authentication) and per authenticated caller (checked right after it, so
//!   nobody can spend another caller's budget by sending its name). A tenant file may
//!   set its own values; 0 turns a limit off.
//!
//! A limited request never counts toward lockout and never waits for a hash permit.
//! Idle keys are dropped by [`Limits::sweep`]; every key is an address or a validated
//! caller name, so memory per key is bounded.

use crate::config::RateLimits;
use crate::domain::tenant::{Tenant, TenantId};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// A request over a limit; retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

#[derive(Debug)]
pub struct Limits {
    config: RateLimits,
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Addresses out of failure cells, until when.
    blocked: DashMap<IpAddr, Instant>,
    requests: DashMap<TenantId, TenantLimiters>,
}

/// One tenant's request limiters, built for the quotas in force when they were made.
#[derive(Debug)]
struct TenantLimiters {
    per_caller: u32,
    per_tenant: u32,
    tenant: Option<DefaultDirectRateLimiter>,
    callers: Option<DefaultKeyedRateLimiter<String>>,
}

impl TenantLimiters {
    fn new(per_caller: u32, per_tenant: u32) -> Self {
        TenantLimiters {
            per_caller,
            per_tenant,
            tenant: NonZeroU32::new(per_tenant).map(|n| RateLimiter::direct(Quota::per_second(n))),
            callers: NonZeroU32::new(per_caller).map(|n| RateLimiter::keyed(Quota::per_second(n))),
        }
    }
}

impl Limits {
    pub fn new(config: RateLimits) -> Self {
        Limits {
            config,
            failures: NonZeroU32::new(config.failed_auth_per_address)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: DashMap::new(),
            requests: DashMap::new(),
        }
    }

    /// Refuses an address that used up its failed authentications: before any hashing.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Limited> {
        let key = address_key(address);
        let Some(until) = self.blocked.get(&key).map(|u| *u) else {
            return Ok(());
        };
        let now = Instant::now();
        if until <= now {
            self.blocked.remove_if(&key, |_, u| *u <= now);
            return Ok(());
        }
        Err(Limited {
            retry_after: until - now,
        })
    }

    /// Counts a failed authentication from `address`.
    pub fn record_failed_auth(&self, address: IpAddr) {
        let Some(failures) = &self.failures else {
            return;
        };
        let key = address_key(address);
        if let Err(not_until) = failures.check_key(&key) {
            self.blocked
                .insert(key, Instant::now() + wait_time(&not_until));
        }
    }

    /// The tenant's request budget, before its caller is known.
    pub fn check_tenant(&self, tenant: &Tenant) -> Result<(), Limited> {
        self.with_limiters(tenant, |l| match &l.tenant {
            Some(limiter) => limiter.check().map_err(|n| limited(&n)),
            None => Ok(()),
        })
    }

    /// The budget of one authenticated caller (a client id or `user@tenant`).
    pub fn check_caller(&self, tenant: &Tenant, caller: &str) -> Result<(), Limited> {
        self.with_limiters(tenant, |l| match &l.callers {
            Some(limiter) => limiter
                .check_key(&caller.to_owned())
                .map_err(|n| limited(&n)),
            None => Ok(()),
        })
    }

    /// Drops idle keys: addresses and callers whose budget is full again.
    pub fn sweep(&self) {
        if let Some(failures) = &self.failures {
            failures.retain_recent();
            failures.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
        for limiters in self.requests.iter() {
            if let Some(callers) = &limiters.callers {
                callers.retain_recent();
                callers.shrink_to_fit();
            }
        }
    }

    fn with_limiters(
        &self,
        tenant: &Tenant,
        check: impl FnOnce(&TenantLimiters) -> Result<(), Limited>,
    ) -> Result<(), Limited> {
        let own = tenant.settings.rate_limits;
        let per_caller = own
            .requests_per_caller
            .unwrap_or(self.config.requests_per_caller);
        let per_tenant = own
            .requests_per_tenant
            .unwrap_or(self.config.requests_per_tenant);
        if per_caller == 0 && per_tenant == 0 {
            return Ok(());
        }
        let current = |l: &TenantLimiters| l.per_caller == per_caller && l.per_tenant == per_tenant;
        if let Some(limiters) = self.requests.get(&tenant.id).filter(|l| current(l)) {
            return check(&limiters);
        }
        // New, or its tenant's limits changed since: start afresh with the new quotas.
        let limiters = self
            .requests
            .entry(tenant.id)
            .and_modify(|l| {
                if !current(l) {
                    *l = TenantLimiters::new(per_caller, per_tenant);
                }
            })
            .or_insert_with(|| TenantLimiters::new(per_caller, per_tenant));
        check(&limiters)
    }
}

/// IPv4 as it is (also when mapped into IPv6), IPv6 by its /64.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

fn wait_time(not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
    not_until.wait_time_from(DefaultClock::default().now())
}

fn limited(not_until: &NotUntil<<DefaultClock as Clock>::Instant>) -> Limited {
    Limited {
        retry_after: wait_time(not_until),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ownership::ManagedBy;
    use crate::domain::permission::default_rules;
    use crate::domain::tenant::{TenantDomain, TenantId, TenantRateLimits, TenantSettings};

    fn tenant(rate_limits: TenantRateLimits) -> Tenant {
        Tenant {
            id: TenantId::new(1),
            domain: TenantDomain::parse("foo.com").unwrap(),
            is_super: false,
            settings: TenantSettings {
                rate_limits,
                ..TenantSettings::default()
            },
            settings_managed_by: ManagedBy::Api,
            rules: default_rules(false),
            rules_managed_by: ManagedBy::Api,
            issuer: "https://localhost/t/foo.com".into(),
        }
    }

    fn config(failed: u32, per_caller: u32, per_tenant: u32) -> RateLimits {
        RateLimits {
            failed_auth_per_address: failed,
            requests_per_caller: per_caller,
            requests_per_tenant: per_tenant,
        }
    }

    #[test]
    fn an_address_is_refused_after_its_failures_and_others_are_not() {
        let limits = Limits::new(config(3, 0, 0));
        let attacker = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limits.check_address(attacker).is_ok());
            limits.record_failed_auth(attacker);
        }
        assert!(
            limits.check_address(attacker).is_ok(),
            "the budget is spent, not exceeded"
        );
        limits.record_failed_auth(attacker);
        let refused = limits.check_address(attacker).unwrap_err();
        assert!(refused.retry_after > Duration::ZERO);
        assert!(refused.retry_after <= Duration::from_secs(20));
        assert!(limits.check_address(IpAddr::from([10, 0, 0, 2])).is_ok());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), IpAddr::from([10, 1, 2, 3]));
    }

    #[test]
    fn caller_and_tenant_budgets_and_a_tenant_override() {
        let limits = Limits::new(config(0, 2, 0));
        let t = tenant(TenantRateLimits::default());
        assert!(limits.check_caller(&t, "a").is_ok());
        assert!(limits.check_caller(&t, "a").is_ok());
        assert!(limits.check_caller(&t, "a").is_err());
        assert!(limits.check_caller(&t, "b").is_ok(), "callers are apart");
        assert!(
            limits.check_tenant(&t).is_ok(),
            "no tenant limit configured"
        );

        let own = tenant(TenantRateLimits {
            requests_per_caller: Some(0),
            requests_per_tenant: Some(1),
        });
        for _ in 0..5 {
            assert!(limits.check_caller(&own, "a").is_ok(), "0 turns it off");
        }
        assert!(limits.check_tenant(&own).is_ok());
        assert!(limits.check_tenant(&own).is_err());
    }
}
