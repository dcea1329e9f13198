//! What the scenarios need in place: tenant files, tokens written straight into the
//! store (their plaintext kept here to present them), and a PostgreSQL database.

use portcullis::domain::tenant::TenantId;
use portcullis::domain::token::TokenKind;
use portcullis::service::token_text::{digest, random_string};
use portcullis::store::{NewToken, Store};
use std::path::Path;

pub(crate) const CLIENT_ID: &str = "bench-client";
pub(crate) const CLIENT_SECRET: &str = "bench-client-secret";
pub(crate) const USER: &str = "alice";
pub(crate) const USER_PASSWORD: &str = "alice-password";
pub(crate) const TENANT_ADMIN_PASSWORD: &str = "tenant-admin-password";

/// An argon2id hash with the least work argon2 allows: set-up verifies thousands of
/// these once each. The hot paths never hash (a verified pair is remembered), so the
/// scenarios measure the same work as with production parameters.
fn cheap_hash(secret: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).expect("valid parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(secret.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("hashing works")
        .to_string()
}

/// The super tenant's file: its administrator, one confidential client allowed to
/// introspect, one user.
pub(crate) fn write_super_tenant(dir: &Path) {
    std::fs::create_dir_all(dir).expect("the tenants folder");
    let file = format!(
        r#"domain = "carbon.super"

[[clients]]
client_id = "{CLIENT_ID}"
client_secret_hash = "{}"
grant_types = ["client_credentials", "password", "refresh_token"]

[[roles]]
name = "admin"
permissions = ["/permission"]

[[users]]
username = "admin"
password_hash = "{}"
roles = ["admin"]

[[users]]
username = "{USER}"
password_hash = "{}"

[introspection]
allowed_clients = ["{CLIENT_ID}"]
"#,
        cheap_hash(CLIENT_SECRET),
        cheap_hash(crate::ADMIN_PASSWORD),
        cheap_hash(USER_PASSWORD)
    );
    std::fs::write(dir.join("carbon.super.toml"), file).expect("the tenant file");
}

/// The domain of bench tenant `n`.
pub(crate) fn tenant_domain(n: usize) -> String {
    format!("t{n:05}.bench")
}

/// `count` more tenants, each with an administrator `admin` who may introspect.
pub(crate) fn write_tenants(dir: &Path, count: usize) {
    let hash = cheap_hash(TENANT_ADMIN_PASSWORD);
    for n in 0..count {
        let domain = tenant_domain(n);
        let file = format!(
            r#"domain = "{domain}"

[[roles]]
name = "admin"
permissions = ["/permission/admin"]

[[users]]
username = "admin"
password_hash = "{hash}"
roles = ["admin"]
"#
        );
        std::fs::write(dir.join(format!("{domain}.toml")), file).expect("a tenant file");
    }
}

/// The id of the tenant named `domain`.
pub(crate) async fn tenant_id(store: &dyn Store, domain: &str) -> TenantId {
    let tenants = store.tenants().await.expect("the tenants");
    tenants
        .iter()
        .find(|t| t.domain == domain)
        .unwrap_or_else(|| panic!("tenant {domain} is there"))
        .id
}

/// Stores `count` ACTIVE access tokens of the bench client in tenant `tenant_id`, a day
/// long, and returns their plaintext.
pub(crate) async fn store_tokens(
    store: &dyn Store,
    tenant_id: TenantId,
    count: usize,
) -> Vec<String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs() as i64;
    let mut plaintexts = Vec::with_capacity(count);
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..count {
        let plaintext = random_string(32);
        batch.push(NewToken {
            tenant_id,
            kind: TokenKind::Access,
            digest: digest(&plaintext),
            jti: random_string(16),
            grant_id: random_string(16),
            grant_started_at: now,
            refresh_digest: None,
            client_id: CLIENT_ID.into(),
            username: None,
            scope: String::new(),
            issued_at: now,
            not_before: now,
            expires_at: now + 86_400,
            redirect_uri: None,
            code_challenge: None,
            nonce: None,
            auth_time: None,
            sid: None,
        });
        plaintexts.push(plaintext);
        if batch.len() == batch.capacity() || n + 1 == count {
            store
                .insert_tokens(&batch)
                .await
                .expect("tokens are stored");
            batch.clear();
        }
    }
    plaintexts
}

/// A new, empty PostgreSQL database named `name` on the server at `server` (a URL
/// without a database), or `None` when no server answers there.
pub(crate) async fn fresh_postgres(server: &str, name: &str) -> Option<String> {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .ok()?;
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::query(&drop).execute(&mut admin).await.ok()?;
    let create = format!("CREATE DATABASE {name}");
    sqlx::query(&create).execute(&mut admin).await.ok()?;
    Some(format!("{server}/{name}"))
}
