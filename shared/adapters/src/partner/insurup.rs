//! InsurUp's REST API as the tenant's agent user (contracts.md §3.6–3.7), through the partner
//! client (one log record per call, backoff with `Retry-After`, circuit breaker).
//!
//! Every path and field name is here, so a difference in a tenant's InsurUp is a one-place
//! change. Inferred (not confirmed against the live API): the REST read paths
//! (`/api/customers/{id}`, `/api/policies/{id}`, `/api/proposals/{id}`) and the id fields of
//! their answers (`insuredCustomerId`).
//!
//! Tokens: the access token is refreshed at 80 % of its `expiresIn`; refresh tokens rotate (a
//! spent one never works again), so the pair lives in one DynamoDB item with a version, and a
//! new pair is stored only if the version is still the one refreshed from. An instance that
//! loses that race (or whose refresh token another instance already spent) reads the winner's
//! pair instead: no token is lost, and no instance keeps a spent one. Without a usable pair, the
//! agent user logs in again with its e-mail and password from Secrets Manager.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::insurup::event::CustomerChanged;
use onecrm_domain::insurup::worker::InsurUpSource;
use onecrm_domain::insurup::SECRET_INTEGRATION;
use onecrm_domain::log::Integration;
use onecrm_domain::ports::{Secret, SecretStore};
use onecrm_domain::tenant::{secret_name, TenantId};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{endpoint, PartnerClient, PartnerRequest, TokenSource};

pub const DEFAULT_INSURUP_URL: &str = "https://api.insurup.com";
const LOGIN: &str = "/api/authentication:agent-user/login";
const REFRESH: &str = "/api/authentication:agent-user/refresh";
const CUSTOMER: &str = "/api/customers/";
const POLICY: &str = "/api/policies/";
const PROPOSAL: &str = "/api/proposals/";
/// Share of `expiresIn` after which the access token is refreshed (InsurUp's advice).
const REFRESH_AT: f64 = 0.8;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    access_token: String,
    refresh_token: String,
    expires_in: i64,
    #[serde(default)]
    requires_two_factor: bool,
}

/// The stored pair and when to refresh it.
#[derive(Clone)]
struct Stored {
    access: String,
    refresh: String,
    refresh_after_ms: i64,
    version: i64,
}

pub struct InsurUpClient {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    dynamo: aws_sdk_dynamodb::Client,
    table: String,
    tenant_secret_prefix: String,
    base_url: String,
}

impl InsurUpClient {
    /// `PARTNER_URL_INSURUP` points it at a sandbox (tests, `make dev`).
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        dynamo: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        tenant_secret_prefix: impl Into<String>,
    ) -> Self {
        Self {
            partner,
            secrets,
            dynamo,
            table: table.into(),
            tenant_secret_prefix: tenant_secret_prefix.into(),
            base_url: endpoint("insurup", DEFAULT_INSURUP_URL),
        }
    }

    /// The same client against another base URL (a stand-in), set explicitly.
    pub fn at(mut self, base_url: &str) -> Self {
        self.base_url = base_url.trim_end_matches('/').to_string();
        self
    }

    async fn get(
        &self,
        tenant: &TenantId,
        operation: &'static str,
        path: &str,
        id: &str,
        trace: &TraceId,
    ) -> Result<Value, PortError> {
        if id.is_empty()
            || id.len() > 64
            || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(PortError::Rejected(format!("{id:?} is not an InsurUp id")));
        }
        let token = AgentToken {
            client: self,
            tenant,
            trace,
        };
        let response = self
            .partner
            .send(PartnerRequest {
                tenant,
                integration: Integration::InsurUp,
                operation,
                method: reqwest::Method::GET,
                url: format!("{}{path}{id}", self.base_url),
                body: None,
                trace,
                token: Some(&token),
                external_id: Some(id.to_string()),
                classify: None,
                idempotent: true,
                form: None,
            })
            .await?;
        Ok(response.body)
    }

    fn token_key(&self, tenant: &TenantId) -> (AttributeValue, AttributeValue) {
        (
            AttributeValue::S(format!("T#{tenant}#TOKEN#insurup")),
            AttributeValue::S("TOKEN".into()),
        )
    }

    async fn stored(&self, tenant: &TenantId) -> Result<Option<Stored>, PortError> {
        let (pk, sk) = self.token_key(tenant);
        let out = self
            .dynamo
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| crate::dynamodb::port_error("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
        };
        Ok(Some(Stored {
            access: text("access_token").unwrap_or_default(),
            refresh: text("refresh_token").unwrap_or_default(),
            refresh_after_ms: number("refresh_after_ms").unwrap_or(0),
            version: number("version").unwrap_or(0),
        }))
    }

    /// Stores a new pair if nobody stored one since `version`; `false` when someone did.
    async fn store(
        &self,
        tenant: &TenantId,
        tokens: &Tokens,
        version: i64,
    ) -> Result<bool, PortError> {
        let (pk, sk) = self.token_key(tenant);
        let lifetime_ms = (tokens.expires_in.max(1) as f64 * 1000.0 * REFRESH_AT) as i64;
        let put = self
            .dynamo
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", AttributeValue::S("partner_token".into()))
            .item(
                "access_token",
                AttributeValue::S(tokens.access_token.clone()),
            )
            .item(
                "refresh_token",
                AttributeValue::S(tokens.refresh_token.clone()),
            )
            .item(
                "refresh_after_ms",
                AttributeValue::N((Utc::now().timestamp_millis() + lifetime_ms).to_string()),
            )
            .item("version", AttributeValue::N((version + 1).to_string()))
            .condition_expression("attribute_not_exists(pk) OR #version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(crate::dynamodb::port_error("PutItem", e)),
        }
    }

    async fn credentials(&self, tenant: &TenantId) -> Result<(String, String), PortError> {
        let name = secret_name(&self.tenant_secret_prefix, tenant, SECRET_INTEGRATION);
        let secret = self.secrets.get(&name).await?;
        let value: Value = serde_json::from_str(secret.expose())
            .map_err(|_| PortError::Rejected(format!("secret {name} is not JSON")))?;
        let field = |f: &str| {
            value
                .get(f)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        match (field("email"), field("password")) {
            (Some(email), Some(password)) => Ok((email, password)),
            _ => Err(PortError::Unauthorized(format!(
                "secret {name} has no agent-user email and password"
            ))),
        }
    }

    /// One authentication call (login or refresh): no token, no retry on 401 (it is the answer).
    async fn authenticate(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        operation: &'static str,
        path: &str,
        body: Value,
    ) -> Result<Tokens, PortError> {
        let response = self
            .partner
            .send(PartnerRequest {
                tenant,
                integration: Integration::InsurUp,
                operation,
                method: reqwest::Method::POST,
                url: format!("{}{path}", self.base_url),
                body: Some(body),
                trace,
                token: None,
                external_id: None,
                classify: None,
                // A refresh spends its token: sent again after a timeout it would only be refused.
                idempotent: operation != "insurup.token.refresh",
                form: None,
            })
            .await?;
        let tokens: Tokens = serde_json::from_value(response.body).map_err(|e| {
            PortError::Rejected(format!("InsurUp answered tokens we cannot read: {e}"))
        })?;
        if tokens.requires_two_factor {
            return Err(PortError::Unauthorized(
                "the agent user requires two-factor authentication; ask InsurUp for an integration user without it".into(),
            ));
        }
        Ok(tokens)
    }

    /// A usable access token: the stored one while fresh, else refreshed, else a new login.
    async fn access_token(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        force: bool,
    ) -> Result<String, PortError> {
        let stored = self.stored(tenant).await?;
        let now = Utc::now().timestamp_millis();
        if let Some(s) = &stored {
            if !force && !s.access.is_empty() && now < s.refresh_after_ms {
                return Ok(s.access.clone());
            }
        }
        let version = stored.as_ref().map(|s| s.version).unwrap_or(0);
        if let Some(s) = stored.as_ref().filter(|s| !s.refresh.is_empty()) {
            match self
                .authenticate(
                    tenant,
                    trace,
                    "insurup.token.refresh",
                    REFRESH,
                    json!({ "refreshToken": s.refresh }),
                )
                .await
            {
                Ok(tokens) => {
                    // The old refresh token is spent now: keep the new pair even if storing it
                    // fails (this call still works; the next refresh or login recovers).
                    match self.store(tenant, &tokens, version).await {
                        Ok(true) => return Ok(tokens.access_token),
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(tenant = %tenant, error = %e, "InsurUp token pair not stored");
                            return Ok(tokens.access_token);
                        }
                    }
                    // Another instance stored a pair first: use it (ours is valid too, but the
                    // stored one is what every instance will use next).
                    return self
                        .newer_than(tenant, version)
                        .await
                        .map(|s| s.access)
                        .or(Ok(tokens.access_token));
                }
                // Refused (401, or a 4xx for a spent or expired refresh token): spent by another
                // instance's refresh? Then its pair is stored by now; else log in again.
                Err(
                    PortError::Unauthorized(_)
                    | PortError::Rejected(_)
                    | PortError::OutcomeUnknown(_),
                ) => {
                    if let Ok(newer) = self.newer_than(tenant, version).await {
                        return Ok(newer.access);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let (email, password) = self.credentials(tenant).await?;
        let tokens = self
            .authenticate(
                tenant,
                trace,
                "insurup.token.login",
                LOGIN,
                json!({ "email": email, "password": password }),
            )
            .await?;
        if !self.store(tenant, &tokens, version).await? {
            if let Ok(newer) = self.newer_than(tenant, version).await {
                return Ok(newer.access);
            }
        }
        Ok(tokens.access_token)
    }

    async fn newer_than(&self, tenant: &TenantId, version: i64) -> Result<Stored, PortError> {
        match self.stored(tenant).await? {
            Some(s) if s.version > version && !s.access.is_empty() => Ok(s),
            _ => Err(PortError::Unavailable(
                "no newer InsurUp token stored".into(),
            )),
        }
    }

    fn customer_id(body: &Value, what: &str) -> Result<String, PortError> {
        body.get("insuredCustomerId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                PortError::Rejected(format!("InsurUp's {what} names no insuredCustomerId"))
            })
    }
}

/// The agent user's bearer token for one call; a 401 asks for a forced refresh once.
struct AgentToken<'a> {
    client: &'a InsurUpClient,
    tenant: &'a TenantId,
    trace: &'a TraceId,
}

#[async_trait]
impl TokenSource for AgentToken<'_> {
    async fn token(&self, refresh: bool) -> Result<Secret, PortError> {
        self.client
            .access_token(self.tenant, self.trace, refresh)
            .await
            .map(Secret::new)
    }
}

#[async_trait]
impl InsurUpSource for InsurUpClient {
    async fn customer(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        trace: &TraceId,
    ) -> Result<CustomerChanged, PortError> {
        let mut body = self
            .get(tenant, "insurup.customer.get", CUSTOMER, customer_id, trace)
            .await?;
        if body.get("customerId").is_none() {
            body["customerId"] = json!(customer_id);
        }
        serde_json::from_value(body).map_err(|e| {
            PortError::Rejected(format!("InsurUp answered a customer we cannot read: {e}"))
        })
    }

    async fn policy_customer(
        &self,
        tenant: &TenantId,
        policy_id: &str,
        trace: &TraceId,
    ) -> Result<String, PortError> {
        let body = self
            .get(tenant, "insurup.policy.get", POLICY, policy_id, trace)
            .await?;
        Self::customer_id(&body, "policy")
    }

    async fn proposal_customer(
        &self,
        tenant: &TenantId,
        proposal_id: &str,
        trace: &TraceId,
    ) -> Result<String, PortError> {
        let body = self
            .get(tenant, "insurup.proposal.get", PROPOSAL, proposal_id, trace)
            .await?;
        Self::customer_id(&body, "proposal")
    }
}
