//! Secrets Manager behind [`SecretStore`]: read lazily on first use, cached in-process with a
//! TTL in a bounded cache, re-read on demand after a partner refused the cached value
//! (rotation), but at most once a minute per secret, whoever asks.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use onecrm_domain::error::PortError;
use onecrm_domain::ports::{Secret, SecretStore};

use crate::cache::TtlCache;
use crate::dynamodb::port_error;

/// Rotation is picked up within this time even without an auth failure.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);
/// A refresh within this time of the last read answers from the cache: a stream of forged
/// signatures cannot become a stream of Secrets Manager calls.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// Secrets one function instance keeps (tenants x integrations it serves).
const SECRET_CACHE_CAPACITY: usize = 1_000;

pub struct SecretsManagerStore {
    client: Client,
    cache: TtlCache<String, Secret>,
    min_refresh_interval: Duration,
}

impl SecretsManagerStore {
    pub fn new(client: Client) -> Self {
        Self::with_refresh_interval(client, MIN_REFRESH_INTERVAL)
    }

    pub fn with_refresh_interval(client: Client, min_refresh_interval: Duration) -> Self {
        Self {
            client,
            cache: TtlCache::new(SECRET_CACHE_CAPACITY),
            min_refresh_interval,
        }
    }

    async fn read(&self, name: &str) -> Result<Secret, PortError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    PortError::Rejected(format!("secret {name} does not exist"))
                } else {
                    port_error("GetSecretValue", e)
                }
            })?;
        let secret =
            Secret::new(out.secret_string.ok_or_else(|| {
                PortError::Rejected(format!("secret {name} has no string value"))
            })?);
        self.cache.insert(name.to_string(), secret.clone());
        Ok(secret)
    }

    /// Creates the secret or stores a new version of it (tenant onboarding; `onecrm-admin`).
    pub async fn put(&self, name: &str, value: &str) -> Result<(), PortError> {
        let created = self
            .client
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                self.client
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(|e| port_error("PutSecretValue", e))?;
            }
            Err(e) => return Err(port_error("CreateSecret", e)),
        }
        self.cache.remove(&name.to_string());
        Ok(())
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<Secret, PortError> {
        match self.cache.get(&name.to_string(), SECRET_CACHE_TTL) {
            Some(secret) => Ok(secret),
            None => self.read(name).await,
        }
    }

    async fn refresh(&self, name: &str) -> Result<Secret, PortError> {
        match self.cache.get(&name.to_string(), self.min_refresh_interval) {
            Some(recent) => Ok(recent),
            None => self.read(name).await,
        }
    }
}
