//! Nightly jobs' run items (`nightly::RunStore`): `T#<t>#<INTEGRATION>#RUN` / `RUN`, the run as
//! JSON text beside its version, saved only at the version it was read at.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::nightly::RunStore;
use onecrm_domain::tenant::TenantId;

use super::*;

const RUN_SK: &str = "RUN";
/// Finished runs' reports are kept this long.
const REPORT_DAYS: i64 = 90;

impl CrmStore {
    /// Keeps a finished run (`T#<t>#<INTEGRATION>#REPORT` / `RUN#<finished>#<run>`, TTL 90
    /// days), listed newest first by [`CrmStore::finished_runs`].
    pub(super) async fn save_finished_run<T: serde::Serialize>(
        &self,
        tenant: &TenantId,
        integration: Integration,
        (run_id, finished): (&str, chrono::DateTime<chrono::Utc>),
        run: &T,
    ) -> Result<(), PortError> {
        let sk = format!(
            "RUN#{}#{run_id}",
            onecrm_domain::time::to_sortable(&finished)
        );
        let mut stored = item(
            run,
            "run_report",
            &[("pk", keys::run_reports(tenant, integration)), ("sk", sk)],
        )?;
        stored.insert(
            "expires_at".into(),
            n((finished.timestamp() + REPORT_DAYS * 86_400) as u64),
        );
        self.put_item(stored).await
    }

    pub(super) async fn finished_runs<T: serde::de::DeserializeOwned>(
        &self,
        tenant: &TenantId,
        integration: Integration,
        limit: usize,
    ) -> Result<Vec<T>, PortError> {
        self.query_as(
            keys::run_reports(tenant, integration),
            "RUN#",
            true,
            Some(limit),
        )
        .await
    }
}

#[async_trait]
impl RunStore for CrmStore {
    async fn load(
        &self,
        tenant: &TenantId,
        integration: Integration,
    ) -> Result<Option<String>, PortError> {
        let Some(found) = self.get(keys::run(tenant, integration), RUN_SK).await? else {
            return Ok(None);
        };
        Ok(found.get("body").and_then(|b| b.as_s().ok()).cloned())
    }

    async fn save(
        &self,
        tenant: &TenantId,
        integration: Integration,
        body: &str,
        version: u64,
        expected: Option<u64>,
    ) -> Result<bool, PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(keys::run(tenant, integration)))
            .item("sk", s(RUN_SK))
            .item("entity", s("run"))
            .item("body", s(body))
            .item("version", n(version));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(version) => put
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(version)),
        };
        put_if(put).await
    }
}
