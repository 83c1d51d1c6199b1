//! Secrets Manager behind [`SecretStore`]: read lazily on first use, cached in-process with a
//! TTL, re-read on demand after a partner refused the cached value (rotation).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use onecrm_domain::error::PortError;
use onecrm_domain::ports::{Secret, SecretStore};

use crate::dynamodb::port_error;

/// Rotation is picked up within this time even without an auth failure.
pub const SECRET_CACHE_TTL: Duration = Duration::from_secs(300);

pub struct SecretsManagerStore {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Secret)>>,
}

impl SecretsManagerStore {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            ttl: SECRET_CACHE_TTL,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<Secret> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, s)| s.clone())
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
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(())
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> Result<Secret, PortError> {
        match self.cached(name) {
            Some(secret) => Ok(secret),
            None => self.refresh(name).await,
        }
    }

    async fn refresh(&self, name: &str) -> Result<Secret, PortError> {
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
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), (Instant::now(), secret.clone()));
        Ok(secret)
    }
}
