//! Logo's REST service (Logo Objects REST: Tiger, Go3, j-Platform; contracts.md §5) through the
//! partner client: one log record per call, backoff with `Retry-After`, circuit breaker.
//!
//! Every path, parameter and field name is here, so a tenant's Logo version difference is a
//! one-place change. Inferred, not confirmed against a live server: the `q` filter on
//! `DATE_MODIFIED` (invoices and cari), the date format of `q` literals, and the stock query's
//! view name (`LV_<firm>_<period>_STINVTOT`).
//!
//! Tokens: `POST /api/v1/token` with Basic client credentials and a password grant (form
//! encoded), cached per tenant in this process until 80 % of `expires_in`, then refreshed with
//! the refresh token; a `LoginError` (or a 401) logs in again once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::logo::arp::LogoArp;
use onecrm_domain::logo::invoice::LogoInvoiceWire;
use onecrm_domain::logo::ports::{ArpFilter, InvoiceFilter, LogoApi, LogoPage, LogoTarget};
use onecrm_domain::logo::stock::{LogoItemWire, OnHandRow};
use onecrm_domain::logo::SECRET_INTEGRATION;
use onecrm_domain::ports::{Secret, SecretStore};
use onecrm_domain::tenant::{secret_name, TenantId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{endpoint, Form, PartnerClient, PartnerRequest, TokenSource, Verdict};

const API: &str = "/api/v1";
const TOKEN: &str = "/api/v1/token";
const ARPS: &str = "/api/v1/Arps";
const INVOICES: &str = "/api/v1/salesInvoices";
const ITEMS: &str = "/api/v1/items";
const QUERIES: &str = "/api/v1/queries";
/// Share of `expires_in` after which the token is refreshed.
const REFRESH_AT: f64 = 0.8;
/// Item references per stock query (the `IN` list stays a short URL).
const STOCK_REFS_PER_QUERY: usize = 100;

/// The tenant's `logo` secret.
#[derive(Deserialize)]
struct Credentials {
    /// `https://erp.ornek.com.tr:32001` (without `/api/v1`).
    url: String,
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default = "default_expiry")]
    expires_in: u64,
}

fn default_expiry() -> u64 {
    1200
}

#[derive(Clone)]
struct Cached {
    access: String,
    refresh: Option<String>,
    refresh_after: Instant,
}

/// A list answer (swagger typings): `items`, and `totalCount` with `withCount=true`.
#[derive(Deserialize)]
struct ListAnswer<T> {
    #[serde(default = "Vec::new")]
    items: Vec<T>,
    #[serde(default, rename = "totalCount")]
    total_count: Option<u64>,
    #[serde(default)]
    next: Option<Value>,
}

/// Logo's own reading of a refusal: `ModelState.LoginError` means the token is gone.
fn logo_verdict(status: u16, body: &Value) -> Option<Verdict> {
    let state = body.get("ModelState")?;
    if state.get("LoginError").is_some() {
        return Some(Verdict::Unauthorized(format!(
            "Logo: LoginError ({status})"
        )));
    }
    let message = body
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or("refused");
    (status < 500).then(|| Verdict::Final(format!("Logo: {message}")))
}

/// A `q` literal: single quotes doubled.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Logo's servers keep Turkish local time.
fn logo_time(at: &DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Istanbul)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub struct LogoClient {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    tenant_secret_prefix: String,
    tokens: Mutex<HashMap<TenantId, Cached>>,
}

impl LogoClient {
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        tenant_secret_prefix: impl Into<String>,
    ) -> Self {
        Self {
            partner,
            secrets,
            tenant_secret_prefix: tenant_secret_prefix.into(),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn credentials(&self, tenant: &TenantId, fresh: bool) -> Result<Credentials, PortError> {
        let name = secret_name(&self.tenant_secret_prefix, tenant, SECRET_INTEGRATION);
        let secret = if fresh {
            self.secrets.refresh(&name).await?
        } else {
            self.secrets.get(&name).await?
        };
        serde_json::from_str(secret.expose()).map_err(|e| {
            PortError::Rejected(format!(
                "secret {name} is not Logo credentials (url, client_id, client_secret, username, password): {e}"
            ))
        })
    }

    fn base_url(credentials: &Credentials) -> String {
        endpoint(
            "logo",
            credentials.url.trim_end_matches('/').trim_end_matches(API),
        )
    }

    async fn send(
        &self,
        target: LogoTarget<'_>,
        operation: &'static str,
        method: reqwest::Method,
        path_and_query: String,
        body: Option<Value>,
        idempotent: bool,
    ) -> Result<super::PartnerResponse, PortError> {
        let credentials = self.credentials(target.tenant, false).await?;
        let token = LogoToken {
            client: self,
            target,
        };
        self.partner
            .send(PartnerRequest {
                tenant: target.tenant,
                integration: Integration::Logo,
                operation,
                method,
                url: format!("{}{path_and_query}", Self::base_url(&credentials)),
                body,
                trace: target.trace,
                token: Some(&token),
                external_id: None,
                classify: Some(logo_verdict),
                idempotent,
                form: None,
            })
            .await
    }

    async fn list<T: DeserializeOwned>(
        &self,
        target: LogoTarget<'_>,
        operation: &'static str,
        path: &str,
        q: Option<String>,
        extra: &[(&str, &str)],
        (offset, limit): (u64, u32),
    ) -> Result<LogoPage<T>, PortError> {
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("offset", &offset.to_string())
                .append_pair("limit", &limit.to_string())
                .append_pair("withCount", "true");
            if let Some(q) = &q {
                query.append_pair("q", q);
            }
            for (k, v) in extra {
                query.append_pair(k, v);
            }
            query.finish()
        };
        let response = self
            .send(
                target,
                operation,
                reqwest::Method::GET,
                format!("{path}?{query}"),
                None,
                true,
            )
            .await?;
        let answer: ListAnswer<T> = serde_json::from_slice(&response.raw).map_err(|e| {
            PortError::Rejected(format!("Logo {path} answered an unreadable list: {e}"))
        })?;
        let n = answer.items.len() as u64;
        let more = n > 0
            && match answer.total_count {
                Some(total) => offset + n < total,
                None => answer.next.is_some_and(|n| !n.is_null()) || n >= u64::from(limit),
            };
        Ok(LogoPage {
            records: answer.items,
            more,
        })
    }

    async fn login(
        &self,
        target: LogoTarget<'_>,
        refresh: Option<String>,
    ) -> Result<Cached, PortError> {
        let credentials = self.credentials(target.tenant, refresh.is_none()).await?;
        let (fields, logged): (Vec<(&'static str, Secret)>, &'static [&'static str]) = match refresh
        {
            Some(token) => (
                vec![
                    ("grant_type", Secret::new("refresh_token")),
                    ("refresh_token", Secret::new(token)),
                ],
                &["grant_type"],
            ),
            None => (
                vec![
                    ("grant_type", Secret::new("password")),
                    ("username", Secret::new(credentials.username.clone())),
                    ("firmno", Secret::new(target.settings.firm_no.clone())),
                    ("password", Secret::new(credentials.password.clone())),
                ],
                &["grant_type", "username", "firmno"],
            ),
        };
        let response = self
            .partner
            .send(PartnerRequest {
                tenant: target.tenant,
                integration: Integration::Logo,
                operation: "logo.token",
                method: reqwest::Method::POST,
                url: format!("{}{TOKEN}", Self::base_url(&credentials)),
                body: None,
                trace: target.trace,
                token: None,
                external_id: None,
                classify: None,
                idempotent: true,
                form: Some(Form {
                    fields,
                    logged,
                    basic: Some((
                        credentials.client_id.clone(),
                        Secret::new(credentials.client_secret.clone()),
                    )),
                }),
            })
            .await
            .map_err(|e| match e {
                // A refused login is our credentials, whatever the status Logo chose.
                PortError::Rejected(why) => PortError::Unauthorized(why),
                other => other,
            })?;
        let tokens: Tokens = serde_json::from_slice(&response.raw)
            .map_err(|e| PortError::Rejected(format!("Logo token answer: {e}")))?;
        let cached = Cached {
            access: tokens.access_token,
            refresh: tokens.refresh_token,
            refresh_after: Instant::now()
                + Duration::from_secs_f64(tokens.expires_in.max(1) as f64 * REFRESH_AT),
        };
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(target.tenant.clone(), cached.clone());
        }
        Ok(cached)
    }
}

struct LogoToken<'a> {
    client: &'a LogoClient,
    target: LogoTarget<'a>,
}

#[async_trait]
impl TokenSource for LogoToken<'_> {
    async fn token(&self, refused: bool) -> Result<Secret, PortError> {
        let cached = self
            .client
            .tokens
            .lock()
            .ok()
            .and_then(|t| t.get(self.target.tenant).cloned());
        let cached = match cached {
            Some(c) if !refused && Instant::now() < c.refresh_after => c,
            // Due: the refresh token first, a fresh login if Logo refuses it.
            Some(Cached {
                refresh: Some(refresh),
                ..
            }) if !refused => match self.client.login(self.target, Some(refresh)).await {
                Ok(c) => c,
                Err(_) => self.client.login(self.target, None).await?,
            },
            _ => self.client.login(self.target, None).await?,
        };
        Ok(Secret::new(cached.access))
    }
}

#[async_trait]
impl LogoApi for LogoClient {
    async fn arps(
        &self,
        target: LogoTarget<'_>,
        filter: &ArpFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoArp>, PortError> {
        let q = match filter {
            ArpFilter::ChangedSince(None) => None,
            ArpFilter::ChangedSince(Some(at)) => {
                Some(format!("DATE_MODIFIED gte {}", quoted(&logo_time(at))))
            }
            ArpFilter::Code(code) => Some(format!("CODE eq {}", quoted(code))),
            ArpFilter::TaxNumber(tax) => Some(format!(
                "TAX_ID eq {} or TCKNO eq {}",
                quoted(tax),
                quoted(tax)
            )),
        };
        self.list(target, "logo.arps.list", ARPS, q, &[], (offset, limit))
            .await
    }

    async fn create_arp(&self, target: LogoTarget<'_>, body: &Value) -> Result<(), PortError> {
        self.send(
            target,
            "logo.arps.create",
            reqwest::Method::POST,
            ARPS.to_string(),
            Some(body.clone()),
            false,
        )
        .await
        .map(|_| ())
    }

    async fn update_arp(
        &self,
        target: LogoTarget<'_>,
        reference: i64,
        body: &Value,
    ) -> Result<(), PortError> {
        self.send(
            target,
            "logo.arps.update",
            reqwest::Method::PUT,
            format!("{ARPS}/{reference}"),
            Some(body.clone()),
            true,
        )
        .await
        .map(|_| ())
    }

    async fn invoices(
        &self,
        target: LogoTarget<'_>,
        filter: &InvoiceFilter,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoInvoiceWire>, PortError> {
        let q = match filter {
            InvoiceFilter::ChangedSince(None) => None,
            InvoiceFilter::ChangedSince(Some(at)) => {
                Some(format!("DATE_MODIFIED gte {}", quoted(&logo_time(at))))
            }
            InvoiceFilter::DatedFrom(day) => Some(format!("DATE gte {}", quoted(&day.to_string()))),
            InvoiceFilter::Customer(code) => Some(format!("ARP_CODE eq {}", quoted(code))),
        };
        self.list(
            target,
            "logo.invoices.list",
            INVOICES,
            q,
            &[("expandLevel", "full")],
            (offset, limit),
        )
        .await
    }

    async fn items(
        &self,
        target: LogoTarget<'_>,
        since: Option<DateTime<Utc>>,
        offset: u64,
        limit: u32,
    ) -> Result<LogoPage<LogoItemWire>, PortError> {
        let q = since.map(|at| format!("DATE_MODIFIED gte {}", quoted(&logo_time(&at))));
        self.list(target, "logo.items.list", ITEMS, q, &[], (offset, limit))
            .await
    }

    async fn on_hand(
        &self,
        target: LogoTarget<'_>,
        item_refs: &[i64],
    ) -> Result<HashMap<i64, String>, PortError> {
        let firm: u32 = target.settings.firm_no.trim().parse().map_err(|_| {
            PortError::Rejected(format!(
                "Logo firm number {:?} is not a number",
                target.settings.firm_no
            ))
        })?;
        let period: u32 = target
            .settings
            .period_no
            .as_deref()
            .unwrap_or("1")
            .trim()
            .parse()
            .map_err(|_| PortError::Rejected("Logo period number is not a number".into()))?;
        let mut found = HashMap::with_capacity(item_refs.len());
        for refs in item_refs.chunks(STOCK_REFS_PER_QUERY) {
            let list = refs
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            // Warehouse -1: the total over all warehouses.
            let sql = format!(
                "SELECT STOCKREF, SUM(ONHAND) AS ONHAND FROM LV_{firm:03}_{period:02}_STINVTOT WHERE INVENNO = -1 AND STOCKREF IN ({list}) GROUP BY STOCKREF"
            );
            let page: LogoPage<OnHandRow> = self
                .list(
                    target,
                    "logo.stock.query",
                    QUERIES,
                    None,
                    &[("tsql", &sql)],
                    (0, STOCK_REFS_PER_QUERY as u32),
                )
                .await?;
            for row in page.records {
                if let Some(quantity) = row.onhand {
                    found.insert(row.stockref, quantity);
                }
            }
        }
        Ok(found)
    }
}
