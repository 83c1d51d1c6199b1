//! Euromsg Express's CRM/ERP gateway (seed 001, contracts.md §4) through the partner client:
//! one log record per call, backoff with `Retry-After`, circuit breaker.
//!
//! Every path, parameter and field name is in this module. Confirmed from public sources:
//! `POST /tokens` with `clientName`/`password` → `tokenValue`, `expireTime`, `roles`. Inferred
//! from the seed's names and behaviour (marked `inferred`), to correct here alone:
//! - the token is sent as `Authorization: Bearer` (the seed: "Bearer Token");
//! - `PUT /apiKey/identification?apiKey=…` (the seed names `apiKey` a variable of that path)
//!   with the integrator's token answers a token for that customer's account (`tokenValue`,
//!   `expireTime`), used for every account call. Were the key a path segment, the log's URL
//!   redaction (query parameters) would have to learn it;
//! - the resource paths, their `page`/`pageSize` paging (from 1) and the list envelope
//!   `{ data, totalCount }`;
//! - member, campaign and report field names;
//! - the refusal of an account without a sending package: `403` with
//!   `errorCode: "NoActivePackage"`.
//!
//! Tokens: the integrator's, one per process, until a minute before `expireTime`; each
//! account's likewise. A 401 logs in again once (integrator token and identification).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use onecrm_domain::error::{FieldError, PortError};
use onecrm_domain::express::campaign::{Campaign, CampaignTotals, ReportRow};
use onecrm_domain::express::member::{ExpressList, Member};
use onecrm_domain::express::ports::{
    ExpressApi, ExpressError, ExpressPage, ExpressResult, ExpressTarget, MemberPush,
};
use onecrm_domain::express::{INTEGRATOR_APP, SECRET_INTEGRATION};
use onecrm_domain::log::Integration;
use onecrm_domain::ports::{Secret, SecretStore};
use onecrm_domain::tenant::{app_secret_name, secret_name, TenantId};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{endpoint, PartnerClient, PartnerRequest, PartnerResponse, TokenSource};

const BASE: &str = "https://express-crm-gw.relateddigital.com";
const TOKENS: &str = "/tokens";
/// inferred: where the apiKey goes.
const IDENTIFICATION: &str = "/apiKey/identification";
/// inferred, as every path below.
const LISTS: &str = "/emailLists";
const MEMBERS: &str = "/members";
const CAMPAIGNS: &str = "/campaigns";
const REPORT: &str = "report";
const REPORT_DETAIL: &str = "report-detail";
/// inferred: Express's refusal of an account without an active sending package.
pub(crate) const NO_PACKAGE_CODE: &str = "NoActivePackage";
/// How long before `expireTime` a token is renewed.
const RENEW_BEFORE: Duration = Duration::seconds(60);

mod wire;

use wire::*;

pub struct ExpressClient {
    partner: Arc<PartnerClient>,
    secrets: Arc<dyn SecretStore>,
    tenant_secret_prefix: String,
    app_secret_prefix: String,
    /// The gateway's address (`PARTNER_URL_EXPRESS` for a sandbox).
    base: String,
    integrator: Mutex<Option<Token>>,
    accounts: Mutex<HashMap<TenantId, Token>>,
}

fn fresh(token: Option<&Token>) -> Option<String> {
    token
        .filter(|t| Utc::now() < t.renew_at)
        .map(|t| t.value.clone())
}

impl ExpressClient {
    pub fn new(
        partner: Arc<PartnerClient>,
        secrets: Arc<dyn SecretStore>,
        tenant_secret_prefix: impl Into<String>,
        app_secret_prefix: impl Into<String>,
    ) -> Self {
        Self {
            partner,
            secrets,
            tenant_secret_prefix: tenant_secret_prefix.into(),
            app_secret_prefix: app_secret_prefix.into(),
            base: endpoint("express", BASE),
            integrator: Mutex::new(None),
            accounts: Mutex::new(HashMap::new()),
        }
    }

    /// The same client against another gateway address (a test's sandbox).
    pub fn at(mut self, base: &str) -> Self {
        self.base = base.trim_end_matches('/').to_string();
        self
    }

    fn base(&self) -> &str {
        &self.base
    }

    async fn secret<T: DeserializeOwned>(
        &self,
        name: &str,
        fresh: bool,
        shape: &str,
    ) -> Result<T, PortError> {
        let secret = match fresh {
            true => self.secrets.refresh(name).await?,
            false => self.secrets.get(name).await?,
        };
        serde_json::from_str(secret.expose())
            .map_err(|e| PortError::Rejected(format!("secret {name} is not {shape}: {e}")))
    }

    fn token_of(response: &PartnerResponse) -> Result<Token, PortError> {
        let answer: TokenAnswer = serde_json::from_slice(&response.raw)
            .map_err(|e| PortError::Rejected(format!("Express token answer: {e}")))?;
        let expires = time(&Some(answer.expire_time)).ok_or_else(|| {
            PortError::Rejected("Express token answer: unreadable expireTime".into())
        })?;
        Ok(Token {
            value: answer.token_value,
            renew_at: expires - RENEW_BEFORE,
        })
    }

    /// The integrator's token (`POST /tokens`).
    async fn integrator_token(
        &self,
        target: ExpressTarget<'_>,
        renew: bool,
    ) -> Result<String, PortError> {
        if !renew {
            if let Some(token) = fresh(self.integrator.lock().ok().and_then(|t| t.clone()).as_ref())
            {
                return Ok(token);
            }
        }
        let name = app_secret_name(&self.app_secret_prefix, SECRET_INTEGRATION, INTEGRATOR_APP);
        let credentials: Integrator = self.secret(&name, renew, "{client_name, password}").await?;
        let response = self
            .partner
            .send(PartnerRequest {
                tenant: target.tenant,
                integration: Integration::Express,
                operation: "express.token",
                method: reqwest::Method::POST,
                url: format!("{}{TOKENS}", self.base()),
                body: Some(json!({ "clientName": credentials.client_name, "password": credentials.password })),
                trace: target.trace,
                token: None,
                external_id: None,
                classify: None,
                idempotent: true,
                form: None,
            })
            .await
            .map_err(|e| match e {
                PortError::Rejected(why) => PortError::Unauthorized(why),
                other => other,
            })?;
        let token = Self::token_of(&response)?;
        if let Ok(mut cached) = self.integrator.lock() {
            *cached = Some(token.clone());
        }
        Ok(token.value)
    }

    /// The tenant's account token: the integrator's token identified with the API key.
    async fn account_token(
        &self,
        target: ExpressTarget<'_>,
        renew: bool,
    ) -> Result<String, PortError> {
        if !renew {
            let cached = self
                .accounts
                .lock()
                .ok()
                .and_then(|a| a.get(target.tenant).cloned());
            if let Some(token) = fresh(cached.as_ref()) {
                return Ok(token);
            }
        }
        let name = secret_name(
            &self.tenant_secret_prefix,
            target.tenant,
            SECRET_INTEGRATION,
        );
        let account: Account = self.secret(&name, renew, "{api_key}").await?;
        let integrator = IntegratorToken {
            client: self,
            target,
        };
        let key: String =
            url::form_urlencoded::byte_serialize(account.api_key.as_bytes()).collect();
        let response = self
            .partner
            .send(PartnerRequest {
                tenant: target.tenant,
                integration: Integration::Express,
                operation: "express.identification",
                method: reqwest::Method::PUT,
                // A query parameter named `key`: the log shows it redacted (`redact_url`).
                url: format!("{}{IDENTIFICATION}?apiKey={key}", self.base()),
                body: None,
                trace: target.trace,
                token: Some(&integrator),
                external_id: None,
                classify: Some(express_verdict),
                idempotent: true,
                form: None,
            })
            .await?;
        let token = Self::token_of(&response)?;
        if let Ok(mut accounts) = self.accounts.lock() {
            accounts.insert(target.tenant.clone(), token.clone());
        }
        Ok(token.value)
    }

    async fn send(
        &self,
        target: ExpressTarget<'_>,
        operation: &'static str,
        (method, path_and_query): (reqwest::Method, String),
        body: Option<Value>,
        idempotent: bool,
        external_id: Option<String>,
    ) -> ExpressResult<PartnerResponse> {
        let token = AccountToken {
            client: self,
            target,
        };
        self.partner
            .send(PartnerRequest {
                tenant: target.tenant,
                integration: Integration::Express,
                operation,
                method,
                url: format!("{}{path_and_query}", self.base()),
                body,
                trace: target.trace,
                token: Some(&token),
                external_id,
                classify: Some(express_verdict),
                idempotent,
                form: None,
            })
            .await
            .map_err(express_error)
    }

    /// One page of a list resource, each record read on its own.
    async fn page<W: DeserializeOwned, T>(
        &self,
        target: ExpressTarget<'_>,
        operation: &'static str,
        (path, what): (&str, &str),
        extra: &[(&str, &str)],
        (page, size): (u32, u32),
        read: impl Fn(W) -> Result<T, FieldError>,
    ) -> ExpressResult<ExpressPage<T>> {
        let query = {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query
                .append_pair("page", &page.to_string())
                .append_pair("pageSize", &size.to_string());
            for (k, v) in extra {
                query.append_pair(k, v);
            }
            query.finish()
        };
        let response = self
            .send(
                target,
                operation,
                (reqwest::Method::GET, format!("{path}?{query}")),
                None,
                true,
                None,
            )
            .await?;
        let answer: Paged = serde_json::from_slice(&response.raw).map_err(|e| {
            ExpressError::Port(PortError::Rejected(format!(
                "Express {path} answered an unreadable page: {e}"
            )))
        })?;
        let n = answer.data.len() as u64;
        let from = u64::from(page.max(1) - 1) * u64::from(size);
        let more = n > 0
            && match answer.total_count {
                Some(total) => from + n < total,
                None => n >= u64::from(size),
            };
        Ok(ExpressPage {
            records: records(what, answer.data, from, read),
            more,
        })
    }

    fn member_body(push: &MemberPush) -> Value {
        let mut body = json!({
            "listId": push.list_id,
            "email": push.email,
            "firstName": push.first_name,
            "lastName": push.last_name,
        });
        if let Some(iys) = &push.iys {
            body["iysConsentDate"] = json!(iys
                .consent_date
                .with_timezone(&chrono_tz::Europe::Istanbul)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string());
            body["iysConsentSource"] = json!(iys.source);
            body["iysMerchantConsentStatus"] = json!(iys.merchant_status);
            body["iysRecipientType"] = json!(iys.recipient_type);
        }
        body
    }
}

struct IntegratorToken<'a> {
    client: &'a ExpressClient,
    target: ExpressTarget<'a>,
}

#[async_trait]
impl TokenSource for IntegratorToken<'_> {
    async fn token(&self, refused: bool) -> Result<Secret, PortError> {
        self.client
            .integrator_token(self.target, refused)
            .await
            .map(Secret::new)
    }
}

struct AccountToken<'a> {
    client: &'a ExpressClient,
    target: ExpressTarget<'a>,
}

#[async_trait]
impl TokenSource for AccountToken<'_> {
    /// After a 401 both tokens are renewed: the integrator's may be the one that expired.
    async fn token(&self, refused: bool) -> Result<Secret, PortError> {
        if refused {
            self.client.integrator_token(self.target, true).await?;
        }
        self.client
            .account_token(self.target, refused)
            .await
            .map(Secret::new)
    }
}

fn one<W: DeserializeOwned, T>(
    response: &PartnerResponse,
    what: &str,
    read: impl Fn(W) -> Result<T, FieldError>,
) -> ExpressResult<T> {
    let wire: W = serde_json::from_slice(&response.raw)
        .map_err(|e| PortError::Rejected(format!("Express {what} answer: {e}")))?;
    read(wire).map_err(|e| {
        PortError::Rejected(format!("Express {what} answer: {}: {}", e.field, e.message)).into()
    })
}

#[async_trait]
impl ExpressApi for ExpressClient {
    async fn lists(
        &self,
        target: ExpressTarget<'_>,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<ExpressList>> {
        let read = |w: ListWire| {
            Ok(ExpressList {
                id: id_text(&w.id).ok_or_else(|| FieldError::missing("id"))?,
                name: w.name,
            })
        };
        self.page(
            target,
            "express.lists.list",
            (LISTS, "emailLists"),
            &[],
            (page, size),
            read,
        )
        .await
    }

    async fn create_list(
        &self,
        target: ExpressTarget<'_>,
        name: &str,
    ) -> ExpressResult<ExpressList> {
        let response = self
            .send(
                target,
                "express.lists.create",
                (reqwest::Method::POST, LISTS.into()),
                Some(json!({ "name": name })),
                false,
                None,
            )
            .await?;
        one(&response, "list", |w: ListWire| {
            Ok(ExpressList {
                id: id_text(&w.id).ok_or_else(|| FieldError::missing("id"))?,
                name: w.name,
            })
        })
    }

    async fn rename_list(
        &self,
        target: ExpressTarget<'_>,
        id: &str,
        name: &str,
    ) -> ExpressResult<()> {
        self.send(
            target,
            "express.lists.rename",
            (reqwest::Method::PATCH, format!("{LISTS}/{id}")),
            Some(json!({ "name": name })),
            true,
            Some(id.into()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_list(&self, target: ExpressTarget<'_>, id: &str) -> ExpressResult<()> {
        self.send(
            target,
            "express.lists.delete",
            (reqwest::Method::DELETE, format!("{LISTS}/{id}")),
            None,
            true,
            Some(id.into()),
        )
        .await
        .map(|_| ())
    }

    async fn members(
        &self,
        target: ExpressTarget<'_>,
        list_id: &str,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<Member>> {
        self.page(
            target,
            "express.members.list",
            (MEMBERS, "members"),
            &[("listId", list_id)],
            (page, size),
            member_of,
        )
        .await
    }

    async fn member_by_email(
        &self,
        target: ExpressTarget<'_>,
        email: &str,
    ) -> ExpressResult<Option<Member>> {
        let found = self
            .page(
                target,
                "express.members.find",
                (MEMBERS, "members"),
                &[("email", email)],
                (1, 1),
                member_of,
            )
            .await?;
        Ok(found.records.into_iter().find_map(Result::ok))
    }

    async fn create_member(
        &self,
        target: ExpressTarget<'_>,
        push: &MemberPush,
    ) -> ExpressResult<String> {
        let response = self
            .send(
                target,
                "express.members.create",
                (reqwest::Method::POST, MEMBERS.into()),
                Some(Self::member_body(push)),
                false,
                Some(push.list_id.clone()),
            )
            .await?;
        one(&response, "member", |w: Value| {
            w.get("memberId")
                .and_then(id_text)
                .ok_or_else(|| FieldError::missing("memberId"))
        })
    }

    async fn update_member(
        &self,
        target: ExpressTarget<'_>,
        member_id: &str,
        push: &MemberPush,
    ) -> ExpressResult<()> {
        self.send(
            target,
            "express.members.update",
            (reqwest::Method::PATCH, format!("{MEMBERS}/{member_id}")),
            Some(Self::member_body(push)),
            true,
            Some(member_id.into()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member(
        &self,
        target: ExpressTarget<'_>,
        member_id: &str,
        list_id: &str,
    ) -> ExpressResult<()> {
        let list: String = url::form_urlencoded::byte_serialize(list_id.as_bytes()).collect();
        self.send(
            target,
            "express.members.delete",
            (
                reqwest::Method::DELETE,
                format!("{MEMBERS}/{member_id}?listId={list}"),
            ),
            None,
            true,
            Some(member_id.into()),
        )
        .await
        .map(|_| ())
    }

    async fn campaigns(
        &self,
        target: ExpressTarget<'_>,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<Campaign>> {
        self.page(
            target,
            "express.campaigns.list",
            (CAMPAIGNS, "campaigns"),
            &[],
            (page, size),
            campaign_of,
        )
        .await
    }

    async fn campaign_totals(
        &self,
        target: ExpressTarget<'_>,
        campaign_id: &str,
    ) -> ExpressResult<CampaignTotals> {
        let response = self
            .send(
                target,
                "express.campaigns.report",
                (
                    reqwest::Method::GET,
                    format!("{CAMPAIGNS}/{campaign_id}/{REPORT}"),
                ),
                None,
                true,
                Some(campaign_id.into()),
            )
            .await?;
        one(&response, "campaign report", |w: TotalsWire| {
            Ok(CampaignTotals {
                sent: w.sent,
                hard_bounced: w.hard_bounced,
                soft_bounced: w.soft_bounced,
                opened: w.opened,
                clicked: w.clicked,
                unsubscribed: w.unsubscribed,
            })
        })
    }

    async fn report_rows(
        &self,
        target: ExpressTarget<'_>,
        campaign_id: &str,
        page: u32,
        size: u32,
    ) -> ExpressResult<ExpressPage<ReportRow>> {
        let path = format!("{CAMPAIGNS}/{campaign_id}/{REPORT_DETAIL}");
        self.page(
            target,
            "express.campaigns.report_detail",
            (&path, "reportDetail"),
            &[],
            (page, size),
            row_of,
        )
        .await
    }
}
