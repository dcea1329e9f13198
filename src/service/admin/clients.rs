//! OAuth clients of a tenant: register, list, edit, delete, rotate secrets, unlock
//! (SPEC §8).

use super::page::{List, ListRequest, Page};
use super::{invalid, Admin};
use crate::domain::audit::AuditAction;
use crate::domain::client::{self, AccessTokenFormat, GrantType};
use crate::domain::ownership::ManagedBy;
use crate::service::authenticate::is_locked;
use crate::service::token_text::random_string;
use crate::service::{now, Error, Gateway, Result};
use crate::store::{ClientEdit, ClientRecord, LockTarget, NewClient};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClientRequest {
    pub client_id: Option<String>,
    #[serde(default)]
    pub public: bool,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// PKCE S256 at the code grant; only a confidential client may turn it off.
    #[serde(default = "pkce_by_default")]
    pub require_pkce: bool,
    pub name: Option<String>,
    /// `opaque` (the default) or `jwt` (RFC 9068).
    pub access_token_format: Option<String>,
}

fn pkce_by_default() -> bool {
    true
}

/// An edit of a client (`PATCH /clients/{id}`): what it names changes, the rest stays.
/// `"name": ""` takes the name away.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPatch {
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub require_pkce: Option<bool>,
    pub name: Option<String>,
    pub access_token_format: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClientView {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub require_pkce: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub access_token_format: AccessTokenFormat,
    /// Who owns the registration: `file` (a tenant file; change it there) or `api`.
    pub managed_by: ManagedBy,
    pub locked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
}

/// A client as registered, with its secret: the only time the secret is shown.
#[derive(Serialize)]
#[allow(missing_debug_implementations, reason = "holds a client secret")]
pub struct RegisteredClient {
    #[serde(flatten)]
    pub client: ClientView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[derive(Serialize)]
#[allow(missing_debug_implementations, reason = "holds a client secret")]
pub struct SecretView {
    pub client_id: String,
    pub client_secret: String,
}

fn client_view(client: &ClientRecord, now: i64) -> ClientView {
    let locked = is_locked(client.locked_until, now);
    ClientView {
        client_id: client.client_id.clone(),
        public: client.secret_hash.is_none(),
        grant_types: client.grant_types.clone(),
        redirect_uris: client.redirect_uris.clone(),
        scopes: client.scopes.clone(),
        require_pkce: client.require_pkce,
        name: client.name.clone(),
        access_token_format: client.access_token_format,
        managed_by: client.source.managed_by(),
        locked,
        locked_until: client.locked_until.filter(|_| locked),
    }
}

impl Gateway {
    /// A page of the tenant's clients by client id.
    pub async fn list_clients(
        &self,
        admin: &Admin,
        request: &ListRequest,
    ) -> Result<Page<ClientView>> {
        let tenant_id = admin.tenant.id;
        let page = self.name_page(List::Clients, tenant_id, request)?;
        let rows = self.store.clients_page(tenant_id, &page).await?;
        let page = self.page(List::Clients, tenant_id, rows, page.limit, |c| {
            c.client_id.clone()
        });
        let now = now();
        Ok(page.map(|c| client_view(&c, now)))
    }

    pub async fn get_client(&self, admin: &Admin, client_id: &str) -> Result<ClientView> {
        Ok(client_view(
            &self.tenant_client(admin, client_id).await?,
            now(),
        ))
    }

    /// A client of the admin's own tenant (client ids are global: another tenant's client
    /// is "not found" here, never shown).
    async fn tenant_client(&self, admin: &Admin, client_id: &str) -> Result<ClientRecord> {
        let client = self
            .store
            .client(client_id)
            .await?
            .filter(|c| c.tenant_id == admin.tenant.id);
        client.ok_or(Error::NotFound("client"))
    }

    pub async fn create_client(
        &self,
        admin: &Admin,
        request: NewClientRequest,
    ) -> Result<RegisteredClient> {
        let client_id = request.client_id.unwrap_or_else(|| random_string(18));
        let grant_types = client::validate(
            &client_id,
            request.public,
            &request.grant_types,
            &request.redirect_uris,
            &request.scopes,
            request.require_pkce,
        )
        .map_err(|e| invalid(e.field, e.message))?;
        if let Some(Err(e)) = request.name.as_deref().map(client::check_name) {
            return Err(invalid(e.field, e.message));
        }
        let access_token_format = match request.access_token_format.as_deref() {
            Some(name) => {
                AccessTokenFormat::parse(name).map_err(|e| invalid(e.field, e.message))?
            }
            None => AccessTokenFormat::Opaque,
        };
        let secret = (!request.public).then(|| random_string(32));
        let hash = match &secret {
            Some(secret) => Some(
                self.hash_secret(admin, &SecretString::from(secret.clone()))
                    .await?,
            ),
            None => None,
        };
        let new = NewClient {
            client_id: &client_id,
            secret_hash: hash.as_deref(),
            grant_types: &grant_types,
            redirect_uris: &request.redirect_uris,
            scopes: &request.scopes,
            require_pkce: request.require_pkce,
            name: request.name.as_deref(),
            access_token_format,
        };
        let write = self
            .store
            .create_client(
                admin.tenant.id,
                &new,
                &admin.audit(AuditAction::ClientCreate, &client_id),
            )
            .await?;
        self.settle(write).await?;
        let client = self.get_client(admin, &client_id).await?;
        Ok(RegisteredClient {
            client,
            client_secret: secret,
        })
    }

    /// Edits what a client's registration says, with the checks of a registration.
    /// Tokens already issued stay as they are: a grant type taken away stops only
    /// grants to come. A client a tenant file declares is the file's to change.
    pub async fn edit_client(
        &self,
        admin: &Admin,
        client_id: &str,
        patch: ClientPatch,
    ) -> Result<ClientView> {
        let client = self.api_managed_client(admin, client_id).await?;
        let edited = Edited::of(&client, patch)?;
        if edited.changed.is_empty() {
            return Ok(client_view(&client, now()));
        }
        let edit = ClientEdit {
            grant_types: &edited.grant_types,
            redirect_uris: &edited.redirect_uris,
            scopes: &edited.scopes,
            require_pkce: edited.require_pkce,
            name: edited.name.as_deref(),
            access_token_format: edited.access_token_format,
        };
        let audit = admin
            .audit(AuditAction::ClientUpdate, client_id)
            .with_detail(edited.changed.join(", "));
        let write = self
            .store
            .update_client(admin.tenant.id, client_id, &edit, &audit)
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("client"))?;
        self.get_client(admin, client_id).await
    }

    /// A client of the admin's tenant that the API may change.
    async fn api_managed_client(&self, admin: &Admin, client_id: &str) -> Result<ClientRecord> {
        let client = self.tenant_client(admin, client_id).await?;
        let what = format!("client {client_id:?}");
        self.check_api_managed(admin, client.source.managed_by(), what)?;
        Ok(client)
    }

    pub async fn delete_client(&self, admin: &Admin, client_id: &str) -> Result<()> {
        self.api_managed_client(admin, client_id).await?;
        let write = self
            .store
            .delete_client(
                admin.tenant.id,
                client_id,
                &admin.audit(AuditAction::ClientDelete, client_id),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("client"))
    }

    /// Issues a new secret; the old one stops working at once (its hash is gone, and
    /// with it every remembered verification).
    pub async fn rotate_secret(&self, admin: &Admin, client_id: &str) -> Result<SecretView> {
        let client = self.api_managed_client(admin, client_id).await?;
        if client.secret_hash.is_none() {
            return Err(invalid("client_id", "a public client has no secret"));
        }
        let secret = random_string(32);
        let hash = self
            .hash_secret(admin, &SecretString::from(secret.clone()))
            .await?;
        let write = self
            .store
            .set_client_secret(
                admin.tenant.id,
                client_id,
                &hash,
                &admin.audit(AuditAction::ClientSecret, client_id),
            )
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("client"))?;
        Ok(SecretView {
            client_id: client_id.to_owned(),
            client_secret: secret,
        })
    }

    pub async fn unlock_client(&self, admin: &Admin, client_id: &str) -> Result<ClientView> {
        self.tenant_client(admin, client_id).await?;
        let target = LockTarget::Client { client_id };
        let write = self
            .store
            .clear_failures(target, &admin.audit(AuditAction::ClientUnlock, client_id))
            .await?;
        self.settle(write).await?.ok_or(Error::NotFound("client"))?;
        self.get_client(admin, client_id).await
    }
}

/// A client's registration after an edit, checked, with the fields that changed.
struct Edited {
    grant_types: Vec<GrantType>,
    redirect_uris: Vec<String>,
    scopes: Vec<String>,
    require_pkce: bool,
    name: Option<String>,
    access_token_format: AccessTokenFormat,
    changed: Vec<&'static str>,
}

impl Edited {
    fn of(client: &ClientRecord, patch: ClientPatch) -> Result<Self> {
        let names = patch.grant_types.unwrap_or_else(|| {
            client
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect()
        });
        let redirect_uris = patch
            .redirect_uris
            .unwrap_or_else(|| client.redirect_uris.clone());
        let scopes = patch.scopes.unwrap_or_else(|| client.scopes.clone());
        let require_pkce = patch.require_pkce.unwrap_or(client.require_pkce);
        let public = client.secret_hash.is_none();
        let grant_types = client::validate(
            &client.client_id,
            public,
            &names,
            &redirect_uris,
            &scopes,
            require_pkce,
        )
        .map_err(|e| invalid(e.field, e.message))?;
        let name = match patch.name {
            None => client.name.clone(),
            Some(name) if name.is_empty() => None,
            Some(name) => {
                client::check_name(&name).map_err(|e| invalid(e.field, e.message))?;
                Some(name)
            }
        };
        let access_token_format = match patch.access_token_format.as_deref() {
            Some(name) => {
                AccessTokenFormat::parse(name).map_err(|e| invalid(e.field, e.message))?
            }
            None => client.access_token_format,
        };
        let changed = [
            ("grant_types", grant_types != client.grant_types),
            ("redirect_uris", redirect_uris != client.redirect_uris),
            ("scopes", scopes != client.scopes),
            ("require_pkce", require_pkce != client.require_pkce),
            ("name", name != client.name),
            (
                "access_token_format",
                access_token_format != client.access_token_format,
            ),
        ]
        .into_iter()
        .filter_map(|(field, changed)| changed.then_some(field))
        .collect();
        Ok(Edited {
            grant_types,
            redirect_uris,
            scopes,
            require_pkce,
            name,
            access_token_format,
            changed,
        })
    }
}
