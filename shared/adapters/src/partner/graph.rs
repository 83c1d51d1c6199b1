//! Graph API for Lead Ads: `GET /{version}/{leadgen_id}?fields=…` with the tenant's Page token
//! (`onecrm/tenants/<tenant>/meta` = `{"page_access_token"}`), through the partner client (one
//! log record per call, backoff, `Retry-After`, circuit breaker). Graph's error codes decide
//! the verdict ([`onecrm_domain::meta_lead::graph`]), not its HTTP statuses alone.

use std::sync::Arc;

use async_trait::async_trait;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::meta_lead::graph::{classify, GraphError, GraphVerdict};
use onecrm_domain::meta_lead::lead::{GraphLead, LEAD_FIELDS};
use onecrm_domain::meta_lead::worker::LeadAdsSource;
use onecrm_domain::meta_lead::SECRET_INTEGRATION;
use onecrm_domain::ports::SecretStore;
use onecrm_domain::tenant::{secret_name, TenantId};
use serde_json::Value;

use super::{endpoint, PartnerClient, PartnerRequest, SecretToken, Verdict};

/// The Graph version the lead fields were checked against; `GRAPH_VERSION` overrides it.
pub const DEFAULT_GRAPH_VERSION: &str = "v21.0";
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";

pub struct GraphLeads {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    tenant_secret_prefix: String,
    base_url: String,
    version: String,
}

impl GraphLeads {
    /// `PARTNER_URL_GRAPH` points it at a sandbox (tests, `make dev`).
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        tenant_secret_prefix: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        Self {
            partner,
            secrets,
            tenant_secret_prefix: tenant_secret_prefix.into(),
            base_url: endpoint("graph", DEFAULT_GRAPH_URL)
                .trim_end_matches('/')
                .to_string(),
            version: version.into(),
        }
    }
}

impl GraphLeads {
    /// The same client against another base URL (a stand-in), set explicitly.
    pub fn at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }
}

/// Graph's error body decides; the reason names Graph's code and message.
fn graph_verdict(status: u16, body: &Value) -> Option<Verdict> {
    let error = GraphError::from_body(body);
    let reason = error
        .as_ref()
        .map(GraphError::describe)
        .unwrap_or_else(|| format!("HTTP {status}"));
    Some(match classify(status, error.as_ref()) {
        GraphVerdict::TokenInvalid => Verdict::Unauthorized(reason),
        GraphVerdict::Retry => Verdict::Retry(reason),
        GraphVerdict::Final => Verdict::Final(reason),
    })
}

#[async_trait]
impl LeadAdsSource for GraphLeads {
    async fn lead(
        &self,
        tenant: &TenantId,
        leadgen_id: &str,
        trace: &TraceId,
    ) -> Result<GraphLead, PortError> {
        if leadgen_id.is_empty() || !leadgen_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PortError::Rejected(format!(
                "leadgen id {leadgen_id:?} is not a Graph id"
            )));
        }
        let token = SecretToken {
            secrets: self.secrets.as_ref(),
            name: secret_name(&self.tenant_secret_prefix, tenant, SECRET_INTEGRATION),
            field: "page_access_token",
        };
        let response = self
            .partner
            .send(PartnerRequest {
                tenant,
                integration: Integration::MetaLeadAds,
                operation: "graph.lead.get",
                method: reqwest::Method::GET,
                url: format!(
                    "{}/{}/{leadgen_id}?fields={LEAD_FIELDS}",
                    self.base_url, self.version
                ),
                body: None,
                trace,
                token: Some(&token),
                external_id: Some(leadgen_id.to_string()),
                classify: Some(graph_verdict),
                idempotent: true,
                form: None,
            })
            .await?;
        serde_json::from_value(response.body)
            .map_err(|e| PortError::Rejected(format!("Graph answered a lead we cannot read: {e}")))
    }
}
