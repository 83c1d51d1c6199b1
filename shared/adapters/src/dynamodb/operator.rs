//! Operator API keys (`OPKEY#<sha256 of the key>` / `OPKEY`): found by the hash of the key a
//! request brings, like routes; the key itself is never stored.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use std::sync::Arc;

use onecrm_domain::express::ports::ExpressStore;
use onecrm_domain::log::Integration;
use onecrm_domain::logo::ports::LogoStore;
use onecrm_domain::nightly::RunStore;
use onecrm_domain::operator::keys::{OperatorKey, OperatorKeys, OperatorReads};
use onecrm_domain::tenant::TenantId;

use super::*;

const SK: &str = "OPKEY";

#[async_trait]
impl OperatorKeys for CrmStore {
    async fn key(&self, hash: &str) -> Result<Option<OperatorKey>, PortError> {
        self.get(keys::operator_key(hash), SK)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn put_key(&self, hash: &str, key: &OperatorKey) -> Result<(), PortError> {
        let stored = item(
            key,
            "operator_key",
            &[("pk", keys::operator_key(hash)), ("sk", SK.into())],
        )?;
        self.put_item(stored).await
    }
}

/// The operator API's reads of nightly reports and runs (the CRM table) and of the raw event
/// archive.
pub struct OperatorStore {
    pub crm: Arc<CrmStore>,
    pub archive: Arc<super::ArchiveStore>,
}

#[async_trait]
impl OperatorReads for OperatorStore {
    async fn logo_reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<onecrm_domain::logo::run::SyncRun>, PortError> {
        LogoStore::reports(self.crm.as_ref(), tenant, limit).await
    }

    async fn express_reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<onecrm_domain::express::run::PollRun>, PortError> {
        ExpressStore::reports(self.crm.as_ref(), tenant, limit).await
    }

    async fn current_run(
        &self,
        tenant: &TenantId,
        integration: Integration,
    ) -> Result<Option<serde_json::Value>, PortError> {
        let Some(body) = self.crm.load(tenant, integration).await? else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| PortError::Rejected(format!("stored run unreadable: {e}")))
    }

    async fn delivery(
        &self,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(String, String)>, PortError> {
        self.archive.delivery(tenant, trace).await
    }
}
