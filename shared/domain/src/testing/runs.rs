//! Nightly jobs' run items in memory, with the DynamoDB adapter's version condition.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::error::PortError;
use crate::log::Integration;
use crate::tenant::TenantId;

/// The runs, by tenant and job: (version, JSON).
#[derive(Default)]
pub struct MemoryRuns(Mutex<HashMap<(TenantId, Integration), (u64, String)>>);

#[async_trait]
impl crate::nightly::RunStore for MemoryRuns {
    async fn load(
        &self,
        tenant: &TenantId,
        integration: Integration,
    ) -> Result<Option<String>, PortError> {
        Ok(lock(&self.0)
            .get(&(tenant.clone(), integration))
            .map(|(_, body)| body.clone()))
    }

    async fn save(
        &self,
        tenant: &TenantId,
        integration: Integration,
        body: &str,
        version: u64,
        expected: Option<u64>,
    ) -> Result<bool, PortError> {
        let mut runs = lock(&self.0);
        let key = (tenant.clone(), integration);
        if runs.get(&key).map(|(v, _)| *v) != expected {
            return Ok(false);
        }
        runs.insert(key, (version, body.to_string()));
        Ok(true)
    }
}
