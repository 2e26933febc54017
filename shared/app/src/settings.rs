//! A retailer's channel stores: created and changed, with every setting checked (the domain's
//! rules, and the channel's own for its credentials) before anything is saved. Retailer users only.

use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::ids::StoreId;
use shipsync_domain::secrets::{ChannelCredentials, check_credential_limits};
use shipsync_domain::tenant::{ChannelKind, ChannelStore, StoreChange, check_store_name};

use crate::Failure;
use crate::ports::Repositories;

/// The channel store use cases.
#[derive(Clone)]
pub struct StoreSettings<R> {
    repositories: R,
    /// Whether a store may name its channel's address (`base_url`, a local fake): only the local
    /// stack and tests. Elsewhere channel hosts are fixed, so credentials go nowhere else.
    base_url_allowed: bool,
}

/// A store as saved, and whether it has credentials (never their values).
#[derive(Debug, Clone)]
pub struct SavedStore {
    pub store: ChannelStore,
    pub credentials_set: bool,
}

impl<R: Repositories> StoreSettings<R> {
    pub fn new(repositories: R, base_url_allowed: bool) -> Self {
        Self { repositories, base_url_allowed }
    }

    /// `POST /stores.json`.
    pub async fn create(
        &self,
        principal: &Principal,
        name: &str,
        channel: ChannelKind,
        change: StoreChange,
        credentials: Option<ChannelCredentials>,
    ) -> Result<SavedStore, Failure> {
        retailer_only(principal)?;
        let mut errors = ValidationErrors::new();
        check_store_name(Some(name), &mut errors);
        errors.into_result(())?;
        let id = StoreId::new_unchecked(*self.repositories.allocate_ids(1).await?.start());
        let store = ChannelStore::new(id, principal.retailer_id, name, channel);
        self.save(principal, &store, change, credentials).await
    }

    /// `PUT/PATCH /stores/{id}.json`: a store keeps its channel.
    pub async fn update(
        &self,
        principal: &Principal,
        current: &ChannelStore,
        channel: Option<ChannelKind>,
        change: StoreChange,
        credentials: Option<ChannelCredentials>,
    ) -> Result<SavedStore, Failure> {
        retailer_only(principal)?;
        if channel.is_some_and(|channel| channel != current.channel) {
            return Err(
                ValidationErrors::single("channel", "cannot change: create another store for another channel").into()
            );
        }
        // The change applies to the store as it stands, never to a copy this container
        // remembers: a minute-old copy would undo another update, or miss a provider change
        // that the credential checks below depend on.
        self.repositories.forget_settings(principal.retailer_id);
        let current = self
            .repositories
            .channel_store(principal.retailer_id, current.id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("store {}", current.id)))?;
        self.save(principal, &current, change, credentials).await
    }

    /// One of the caller's retailer's stores; another's is not found.
    pub async fn own_store(&self, principal: &Principal, id: StoreId) -> Result<ChannelStore, Failure> {
        retailer_only(principal)?;
        self.repositories
            .channel_store(principal.retailer_id, id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("store {id}")))
    }

    /// Whether a store has credentials.
    pub async fn credentials_set(&self, store: &ChannelStore) -> Result<bool, Failure> {
        self.repositories.credentials_set(store.retailer_id, store.id).await
    }

    /// Applies a change, checks it, and saves the store with its credentials. Credentials
    /// replace the stored ones whole: with them, the store must be able to work.
    async fn save(
        &self,
        principal: &Principal,
        store: &ChannelStore,
        change: StoreChange,
        credentials: Option<ChannelCredentials>,
    ) -> Result<SavedStore, Failure> {
        let (_, carriers) =
            self.repositories.retailer_with_carriers(principal.retailer_id).await?.ok_or_else(|| {
                Failure::permanent(format!("API user's retailer {} not found", principal.retailer_id))
            })?;
        let current_provider = store.tracking.provider;
        let (store, mut errors) = store.with_change(change, &carriers, self.base_url_allowed);
        if let Some(credentials) = &credentials {
            check_credential_limits(&shipsync_channels::credential_names(store.channel), credentials, &mut errors);
            if let Err(problems) = shipsync_channels::validate_store_settings(&store, credentials) {
                // A field already refused (a malformed shop_domain) is named once.
                let already = errors.clone();
                for problem in problems.errors().iter().filter(|problem| !already.mentions(&problem.field)) {
                    errors.push(problem.field.clone(), problem.message.clone());
                }
            }
        } else if store.tracking.provider.is_some() && store.tracking.provider != current_provider {
            // Another provider's key would be sent to this one, and its scans checked with the
            // previous provider's secret: a new provider comes with its key and its secret.
            for name in ["tracking_api_key", "tracking_webhook_secret"] {
                errors.push(
                    format!("credentials.{name}"),
                    "must be given with a new tracking provider (a stored one is the previous provider's)",
                );
            }
        } else if store.tracking.provider.is_some() {
            // A provider named without new credentials needs its key among the stored ones.
            let stored = self.repositories.credential_names(store.retailer_id, store.id).await?;
            if let Err(problems) =
                shipsync_channels::validate_tracking(&store.tracking, stored.iter().map(String::as_str))
            {
                for problem in problems.errors() {
                    errors.push(problem.field.clone(), problem.message.clone());
                }
            }
        }
        if let Err(problems) =
            shipsync_channels::validate_carrier_mappings(store.channel, &store.export.carrier_mappings)
        {
            for problem in problems.errors() {
                errors.push(problem.field.clone(), problem.message.clone());
            }
        }
        // A seller's notifications go to one store: another store's seller is refused before
        // anything is written (the table's conditional claim settles a race).
        if let (Some(seller), Some(marketplace)) = (&store.connection.seller_id, &store.connection.marketplace_id)
            && let Some(holder) = self.repositories.amazon_store(seller, marketplace).await?
            && (holder.retailer_id, holder.store_id) != (store.retailer_id, store.id)
        {
            errors.push("seller_id", format!("{seller} in marketplace {marketplace} is connected to another store"));
        }
        errors.into_result(())?;
        if let Some(credentials) = &credentials {
            self.repositories.save_credentials(store.retailer_id, store.id, credentials).await?;
        }
        self.repositories.save_channel_store(&store).await?;
        let credentials_set = self.credentials_set(&store).await?;
        Ok(SavedStore { store, credentials_set })
    }
}

/// Store settings are the retailer's.
fn retailer_only(principal: &Principal) -> Result<(), Failure> {
    if principal.is_retailer_user() {
        Ok(())
    } else {
        Err(Failure::Forbidden("only a retailer's API users may do this".into()))
    }
}
