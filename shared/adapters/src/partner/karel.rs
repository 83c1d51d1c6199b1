//! Karel CRM's `PpOpportunities` (seed 003) through the partner client, with the tenant's bearer
//! token (`<prefix><tenant>/karel` = `{"api_token"}`; re-read once after a 401). Paths and
//! field names are here only.
//!
//! A create is not idempotent (Karel has no idempotency key): it is sent without retries after
//! it may have arrived (a timeout, a 5xx other than 503), and such a failure is
//! `OutcomeUnknown`. Karel's 400 for locked data (veri kilitli) is `DataLocked`, final.

use std::sync::Arc;

use async_trait::async_trait;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::karel::worker::{KarelApi, KarelFailure};
use onecrm_domain::karel::SECRET_INTEGRATION;
use onecrm_domain::log::Integration;
use onecrm_domain::ports::SecretStore;
use onecrm_domain::tenant::{secret_name, TenantId};
use serde_json::Value;

use super::{endpoint, PartnerClient, PartnerRequest, SecretToken, Verdict};

pub const DEFAULT_KAREL_URL: &str = "https://crm.karel.cloud";
const OPPORTUNITIES: &str = "/api/v1/PpOpportunities";
/// How a data-locked refusal is told apart in the classified reason.
const DATA_LOCKED: &str = "data locked";

pub struct KarelClient {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    tenant_secret_prefix: String,
    base_url: String,
}

impl KarelClient {
    /// `PARTNER_URL_KAREL` points it at a sandbox (tests, `make dev`).
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        tenant_secret_prefix: impl Into<String>,
    ) -> Self {
        Self {
            partner,
            secrets,
            tenant_secret_prefix: tenant_secret_prefix.into(),
            base_url: endpoint("karel", DEFAULT_KAREL_URL),
        }
    }

    /// The same client against another base URL (a stand-in), set explicitly.
    pub fn at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        operation: &'static str,
        method: reqwest::Method,
        path: String,
        body: Option<Value>,
        external_id: Option<String>,
        idempotent: bool,
    ) -> Result<Value, KarelFailure> {
        let token = SecretToken {
            secrets: self.secrets.as_ref(),
            name: secret_name(&self.tenant_secret_prefix, tenant, SECRET_INTEGRATION),
            field: "api_token",
        };
        let sent = self
            .partner
            .send(PartnerRequest {
                tenant,
                integration: Integration::Karel,
                operation,
                method,
                url: format!("{}{path}", self.base_url),
                body,
                trace,
                token: Some(&token),
                external_id,
                classify: Some(karel_verdict),
                idempotent,
                form: None,
            })
            .await;
        match sent {
            Ok(response) => Ok(response.body),
            Err(PortError::Rejected(why)) if why.starts_with(DATA_LOCKED) => {
                Err(KarelFailure::DataLocked(why))
            }
            Err(other) => Err(KarelFailure::Port(other)),
        }
    }
}

/// Karel answers `{"Result", "ResultMessage"}`; a 400 whose message speaks of locked data is
/// the data-locked refusal (seed 003: "fırsat verisi kilitlenmişse ... 400").
fn karel_verdict(status: u16, body: &Value) -> Option<Verdict> {
    let message = body
        .get("ResultMessage")
        .or_else(|| body.get("Message"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let text = onecrm_domain::text::fold_tr(message);
    match status {
        400 if text.contains("kilit") || text.contains("lock") => {
            Some(Verdict::Final(format!("{DATA_LOCKED}: {message}")))
        }
        401 => Some(Verdict::Unauthorized(format!("HTTP 401 {message}"))),
        _ => None,
    }
}

fn id_of(body: &Value) -> Result<i64, KarelFailure> {
    body.get("Result").and_then(Value::as_i64).ok_or_else(|| {
        KarelFailure::Port(PortError::OutcomeUnknown(format!(
            "Karel answered without an opportunity id: {}",
            body.to_string().chars().take(200).collect::<String>()
        )))
    })
}

#[async_trait]
impl KarelApi for KarelClient {
    async fn create(
        &self,
        tenant: &TenantId,
        body: &Value,
        trace: &TraceId,
    ) -> Result<i64, KarelFailure> {
        let answer = self
            .call(
                tenant,
                trace,
                "karel.opportunity.create",
                reqwest::Method::POST,
                OPPORTUNITIES.into(),
                Some(body.clone()),
                None,
                false,
            )
            .await?;
        id_of(&answer)
    }

    async fn custom_field_values(
        &self,
        tenant: &TenantId,
        id: i64,
        trace: &TraceId,
    ) -> Result<Vec<(i64, String)>, KarelFailure> {
        let answer = self
            .call(
                tenant,
                trace,
                "karel.opportunity.get",
                reqwest::Method::GET,
                format!("{OPPORTUNITIES}/{id}"),
                None,
                Some(id.to_string()),
                true,
            )
            .await?;
        Ok(answer["Result"]["CustomFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| {
                        Some((
                            f.get("CustomFieldValueId")?.as_i64()?,
                            f.get("CustomFieldFieldLabel")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn update(
        &self,
        tenant: &TenantId,
        id: i64,
        body: &Value,
        trace: &TraceId,
    ) -> Result<(), KarelFailure> {
        // Sending the same state twice is harmless: retried like any read.
        self.call(
            tenant,
            trace,
            "karel.opportunity.update",
            reqwest::Method::PUT,
            format!("{OPPORTUNITIES}/{id}"),
            Some(body.clone()),
            Some(id.to_string()),
            true,
        )
        .await
        .map(|_| ())
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        id: i64,
        delete_collection: bool,
        trace: &TraceId,
    ) -> Result<(), KarelFailure> {
        self.call(
            tenant,
            trace,
            "karel.opportunity.delete",
            reqwest::Method::DELETE,
            format!("{OPPORTUNITIES}/{id}?deleteCollection={delete_collection}"),
            None,
            Some(id.to_string()),
            true,
        )
        .await
        .map(|_| ())
    }
}
