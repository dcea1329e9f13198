//! Typed configuration: defaults, then `portcullis.toml` (or `--config`), then
//! `PORTCULLIS__SECTION__KEY` environment variables. Loaded and validated once at start.

use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub tenants: Tenants,
    pub auth: Auth,
    pub rate_limits: RateLimits,
    pub tokens: Tokens,
    pub audit: Audit,
    pub metrics: Metrics,
    pub log: Log,
    pub keys: Keys,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: SocketAddr,
    /// Base of `iss` and of the metadata URLs; never taken from the `Host` header.
    pub public_url: String,
    pub super_tenant: String,
    pub tls: Tls,
    /// CIDRs whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<String>,
    /// Every connection from a trusted proxy starts with a PROXY protocol header (v1 or
    /// v2), which names the client; other peers are served directly.
    pub proxy_protocol: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time allowed for a TLS handshake, for request headers, and for a request body.
    pub handshake_timeout_ms: u64,
    pub header_timeout_ms: u64,
    pub body_timeout_ms: u64,
    /// After SIGTERM: how long new connections are still accepted (readiness is 503
    /// meanwhile, so the load balancer moves away), and how long in-flight requests
    /// may take before the process exits.
    pub shutdown_grace_ms: u64,
    pub drain_timeout_ms: u64,
    /// Open connections at most; past it a new connection is closed at once.
    pub max_connections: usize,
    /// Open connections per client address (peers in `trusted_proxies` are exempt).
    pub max_connections_per_address: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    pub enabled: bool,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tenants {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub lockout_attempts: u32,
    pub lockout_seconds: u64,
}

/// Per-instance rate limits (SPEC §9); 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Failed client or user authentications per minute from one address; past it, 429
    /// before any hashing.
    pub failed_auth_per_address: u32,
    /// Token, introspection and revocation requests per second for one caller.
    pub requests_per_caller: u32,
    /// The same for a whole tenant.
    pub requests_per_tenant: u32,
}

/// How long ended tokens are kept (SPEC §10).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    /// A token that stopped being active this long ago is purged, with its grant.
    pub retention_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Audit events older than this are purged.
    pub retention_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    /// Empty turns the listener off.
    pub listen: String,
    /// Open scrape connections at most; past it a new one is closed at once, so idle
    /// sockets on this port cannot use up the file descriptors the API port needs.
    pub max_connections: usize,
    /// How long a scrape connection may stay open with no request in flight.
    pub idle_timeout_ms: u64,
}

/// The keys that sign introspection answers (RFC 9701).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keys {
    /// The master key that seals every tenant's private key in the database; generated
    /// at the first start. Every instance sharing a database needs the same file.
    pub master_key_file: PathBuf,
    /// How long a key replaced by a rotation stays in the JWKS, so that answers it
    /// signed still verify.
    pub retire_after_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: Server::default(),
            database: Database {
                url: "sqlite://data/portcullis.db".into(),
            },
            tenants: Tenants {
                dir: "tenants".into(),
            },
            auth: Auth {
                lockout_attempts: 5,
                lockout_seconds: 900,
            },
            rate_limits: RateLimits {
                failed_auth_per_address: 60,
                requests_per_caller: 0,
                requests_per_tenant: 0,
            },
            tokens: Tokens {
                retention_seconds: 604_800,
            },
            audit: Audit {
                retention_days: 365,
            },
            metrics: Metrics {
                listen: "127.0.0.1:9090".into(),
                max_connections: 64,
                idle_timeout_ms: 30_000,
            },
            log: Log {
                format: LogFormat::Text,
            },
            keys: Keys {
                master_key_file: "certs/master.key".into(),
                retire_after_seconds: 604_800,
            },
        }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: SocketAddr::from(([0, 0, 0, 0], 9443)),
            public_url: "https://localhost:9443".into(),
            super_tenant: "carbon.super".into(),
            tls: Tls::default(),
            trusted_proxies: Vec::new(),
            proxy_protocol: false,
            max_body_bytes: 64 * 1024,
            handshake_timeout_ms: 10_000,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            shutdown_grace_ms: 2_000,
            drain_timeout_ms: 30_000,
            max_connections: 10_000,
            max_connections_per_address: 512,
        }
    }
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: true,
            cert: "certs/server.crt".into(),
            key: "certs/server.key".into(),
        }
    }
}

impl Default for Database {
    fn default() -> Self {
        Config::default().database
    }
}
impl Default for Tenants {
    fn default() -> Self {
        Config::default().tenants
    }
}
impl Default for Auth {
    fn default() -> Self {
        Config::default().auth
    }
}
impl Default for RateLimits {
    fn default() -> Self {
        Config::default().rate_limits
    }
}
impl Default for Tokens {
    fn default() -> Self {
        Config::default().tokens
    }
}
impl Default for Audit {
    fn default() -> Self {
        Config::default().audit
    }
}
impl Default for Metrics {
    fn default() -> Self {
        Config::default().metrics
    }
}
impl Default for Log {
    fn default() -> Self {
        Config::default().log
    }
}
impl Default for Keys {
    fn default() -> Self {
        Config::default().keys
    }
}

/// A configuration that does not load or does not validate; names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] config::ConfigError),
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Loads defaults, then `file` (required when named explicitly, optional
    /// `portcullis.toml` otherwise), then `PORTCULLIS__…` variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, None)
    }

    /// [`Config::load`] with the `PORTCULLIS__…` variables given rather than read from
    /// the process (`None`), so that a test never changes the process's environment.
    fn load_with(
        file: Option<&Path>,
        variables: Option<config::Map<String, String>>,
    ) -> Result<Self, ConfigError> {
        let file_source = match file {
            Some(path) => config::File::from(path).required(true),
            None => config::File::with_name("portcullis.toml").required(false),
        };
        let loaded = config::Config::builder()
            .add_source(file_source.format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("PORTCULLIS")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.trusted_proxies")
                    .source(variables),
            )
            .build()?;
        let config: Config = loaded.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let url = self.server.public_url.as_str();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.ends_with('/') {
            return invalid(
                "server.public_url",
                format!("must be an http(s) URL without a trailing slash, not {url:?}"),
            );
        }
        if let Err(e) = crate::domain::tenant::TenantDomain::parse(&self.server.super_tenant) {
            return invalid("server.super_tenant", e.to_string());
        }
        if let Err(message) = self.trusted_proxies() {
            return invalid("server.trusted_proxies", message);
        }
        if self.server.proxy_protocol && self.server.trusted_proxies.is_empty() {
            return invalid(
                "server.proxy_protocol",
                "needs server.trusted_proxies: the PROXY header is read only from them".into(),
            );
        }
        let db = self.database.url.as_str();
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return invalid(
                "database.url",
                "must start with sqlite:// or postgres://".into(),
            );
        }
        if self.auth.lockout_attempts == 0 {
            return invalid("auth.lockout_attempts", "must be at least 1".into());
        }
        if !self.metrics.listen.is_empty() && self.metrics.listen.parse::<SocketAddr>().is_err() {
            return invalid(
                "metrics.listen",
                format!("must be HOST:PORT or empty, not {:?}", self.metrics.listen),
            );
        }
        if self.metrics.max_connections == 0 {
            return invalid("metrics.max_connections", "must be positive".into());
        }
        if self.metrics.idle_timeout_ms == 0 {
            return invalid("metrics.idle_timeout_ms", "must be positive".into());
        }
        if self.server.max_connections == 0 {
            return invalid("server.max_connections", "must be positive".into());
        }
        if self.server.max_connections_per_address == 0 {
            return invalid(
                "server.max_connections_per_address",
                "must be positive".into(),
            );
        }
        // Ten years: a longer window would only keep dead keys published.
        if self.keys.retire_after_seconds > 315_360_000 {
            return invalid(
                "keys.retire_after_seconds",
                "must be at most 315360000 (ten years)".into(),
            );
        }
        if self.server.max_body_bytes == 0 {
            return invalid("server.max_body_bytes", "must be positive".into());
        }
        Ok(())
    }

    pub fn trusted_proxies(&self) -> Result<Vec<IpNet>, String> {
        self.server
            .trusted_proxies
            .iter()
            .map(|cidr| {
                cidr.parse::<IpNet>()
                    .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{cidr:?} is not a CIDR"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::default();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9443");
        assert_eq!(c.server.public_url, "https://localhost:9443");
        assert_eq!(c.server.super_tenant, "carbon.super");
        assert!(c.server.tls.enabled);
        assert_eq!(c.database.url, "sqlite://data/portcullis.db");
        assert_eq!((c.auth.lockout_attempts, c.auth.lockout_seconds), (5, 900));
        assert_eq!(c.metrics.listen, "127.0.0.1:9090");
        assert_eq!(c.log.format, LogFormat::Text);
        assert_eq!(c.server.max_body_bytes, 65536);
        assert_eq!(
            (
                c.server.max_connections,
                c.server.max_connections_per_address
            ),
            (10_000, 512)
        );
        assert_eq!(c.rate_limits.failed_auth_per_address, 60);
        assert_eq!(c.rate_limits.requests_per_caller, 0);
        assert_eq!(c.rate_limits.requests_per_tenant, 0);
        assert_eq!(c.tokens.retention_seconds, 604_800);
        assert_eq!(c.audit.retention_days, 365);
        assert_eq!(c.keys.master_key_file, PathBuf::from("certs/master.key"));
        assert_eq!(c.keys.retire_after_seconds, 604_800);
        c.validate().unwrap();
    }

    #[test]
    fn a_file_then_the_environment_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[server]\npublic_url = \"https://id.example.com\"\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        let variables = [("PORTCULLIS__AUTH__LOCKOUT_SECONDS", "60")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        let c = Config::load_with(Some(&path), Some(variables)).unwrap();
        assert_eq!(c.server.public_url, "https://id.example.com");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.auth.lockout_seconds, 60);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[server]\nlisten_on = \"x\"\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("listen_on"), "{e}");
        std::fs::write(&path, "[server]\npublic_url = \"https://x/\"\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("server.public_url"), "{e}");
        std::fs::write(&path, "[keys]\nretire_after_seconds = 999999999999\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("keys.retire_after_seconds"), "{e}");
        std::fs::write(&path, "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap();
        let e = Config::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("server.trusted_proxies"), "{e}");
    }
}
