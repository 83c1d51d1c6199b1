//! The operator API's routes, transport-neutral: a request in, an [`HttpReply`] out. Every
//! route answers only from the caller's tenant (the key's), so one tenant's key never reads
//! another's records: a card or trace of another tenant is simply not found.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde_json::{json, Value};

use super::keys::{key_hash, OperatorKey, OperatorKeys, OperatorReads, Scope};
use super::replay::{DeadLetter, DeadLetters, MAX_LOOKED_AT};
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::http::HttpReply;
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogRecord, LogResult};
use crate::page::{Page, PageRequest};
use crate::party::LeadSource;
use crate::ports::{CallRepository, CrmRepository, LogReader};
use crate::time::istanbul_day_start;

/// Records an event's path may have (its webhook, queue, worker and partner calls).
const TRACE_RECORDS: usize = 500;
/// Timeline entries a card view shows.
const TIMELINE: usize = 50;

/// One API call, as the function received it.
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a HashMap<String, String>,
    /// From `Authorization: Bearer <key>` or `x-api-key`.
    pub api_key: Option<&'a str>,
    pub trace: &'a TraceId,
    /// The request's body (POST routes' JSON).
    pub body: &'a str,
}

/// A refusal: status, code, message and the parameter it is about.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn bad(field: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: 400,
            code: "invalid_parameter",
            message: message.into(),
            field: Some(field),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: 404,
            code: "not_found",
            message: message.into(),
            field: None,
        }
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            // A cursor that does not decode is the caller's.
            PortError::Rejected(m) if m.contains("cursor") => ApiError::bad("cursor", m),
            other => ApiError {
                status: 503,
                code: "unavailable",
                message: other.to_string(),
                field: None,
            },
        }
    }
}

type Answer = Result<Value, ApiError>;

pub struct OperatorApi {
    pub keys: Arc<dyn OperatorKeys>,
    /// Parked and unparsed events (health).
    pub archive: Arc<dyn crate::ports::EventArchive>,
    pub logs: Arc<dyn LogReader>,
    pub crm: Arc<dyn CrmRepository>,
    pub calls: Arc<dyn CallRepository>,
    pub reads: Arc<dyn OperatorReads>,
    pub dead_letters: Arc<dyn DeadLetters>,
    /// Outbound WhatsApp.
    pub send: super::whatsapp::SendPorts,
    /// The payload reads' own records (and the clock).
    pub log: IntegrationLog,
}

fn page_of(query: &HashMap<String, String>) -> Result<PageRequest, ApiError> {
    let limit = match query.get("limit") {
        None => 50,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::bad("limit", "a whole number from 1 to 500"))?,
    };
    Ok(PageRequest {
        limit,
        cursor: query.get("cursor").filter(|c| !c.is_empty()).cloned(),
    })
}

/// RFC 3339, or a day (`2026-11-25`: its start in Istanbul).
fn moment(
    query: &HashMap<String, String>,
    field: &'static str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(text) = query.get(field).map(|t| t.trim()).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(istanbul_day_start)
        .map(Some)
        .ok_or_else(|| ApiError::bad(field, "a time (RFC 3339) or a day (YYYY-MM-DD, Istanbul)"))
}

fn integration_of(text: Option<&str>) -> Result<Integration, ApiError> {
    let text = text.map(str::trim).unwrap_or_default();
    Integration::ALL
        .into_iter()
        .find(|i| i.as_str() == text)
        .ok_or_else(|| ApiError::bad("integration", format!("{text:?} is not an integration")))
}

fn page_json<T: serde::Serialize>(page: Page<T>) -> Value {
    json!({ "items": page.items, "next": page.next })
}

impl OperatorApi {
    pub async fn handle(&self, request: ApiRequest<'_>) -> HttpReply {
        let trace = request.trace.as_str();
        let answer = match self.authenticate(&request).await {
            Ok(key) => self.route(&key, &request).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok((status, body)) => HttpReply::json(status, &body),
            Err(e) => HttpReply::error(e.status, e.code, &e.message, e.field, trace),
        }
    }

    async fn authenticate(&self, request: &ApiRequest<'_>) -> Result<OperatorKey, ApiError> {
        let refused = |code, message: &str| ApiError {
            status: 401,
            code,
            message: message.into(),
            field: None,
        };
        let Some(key) = request.api_key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Err(refused(
                "missing_api_key",
                "send the operator API key as `Authorization: Bearer <key>`",
            ));
        };
        self.keys
            .key(&key_hash(key))
            .await?
            .ok_or_else(|| refused("invalid_api_key", "no such operator API key"))
    }

    async fn route(
        &self,
        key: &OperatorKey,
        request: &ApiRequest<'_>,
    ) -> Result<(u16, Value), ApiError> {
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        let method = match segments.as_slice() {
            ["v1", "replay"] | ["v1", "whatsapp", "messages"] => "POST",
            _ => "GET",
        };
        if request.method != method {
            return Err(ApiError {
                status: 405,
                code: "method_not_allowed",
                message: format!("{} is not supported here; use {method}", request.method),
                field: None,
            });
        }
        let (scope, answer) = match segments.as_slice() {
            ["v1", "logs"] => (Scope::Logs, None),
            ["v1", "traces", _] => (Scope::Logs, None),
            ["v1", "leads"] | ["v1", "reports", "attribution"] => (Scope::Leads, None),
            ["v1", "cards", _] => (Scope::Cards, None),
            ["v1", "call-queue"] => (Scope::Calls, None),
            ["v1", "logo", "report"] | ["v1", "express", "status"] | ["v1", "health"] => {
                (Scope::Logs, None)
            }
            ["v1", "payloads", _] => (Scope::Payloads, None),
            ["v1", "dead-letters"] | ["v1", "replay"] => (Scope::Replay, None),
            ["v1", "whatsapp", "messages"] | ["v1", "whatsapp", "messages", _] => {
                (Scope::Send, None)
            }
            ["v1", "whatsapp", "link"] => (Scope::Cards, None),
            _ => (
                Scope::Logs,
                Some(Err(ApiError::not_found(format!(
                    "no route {}",
                    request.path
                )))),
            ),
        };
        if let Some(answer) = answer {
            return answer.map(|v| (200, v));
        }
        if !key.allows(scope) {
            return Err(ApiError {
                status: 403,
                code: "missing_scope",
                message: format!("this key lacks the `{}` scope", scope.as_str()),
                field: None,
            });
        }
        let query = request.query;
        let found = |value: Option<Value>, what: String| {
            value
                .map(|v| (200, v))
                .ok_or_else(|| ApiError::not_found(what))
        };
        match segments.as_slice() {
            ["v1", "whatsapp", "messages"] => {
                return Ok(self.send_whatsapp(key, request.body, request.trace).await?)
            }
            ["v1", "whatsapp", "messages", send_id] => {
                let view = self.whatsapp_send(key, send_id).await?;
                return found(view, format!("no send {send_id}"));
            }
            ["v1", "whatsapp", "link"] => {
                let links = self.whatsapp_link(key, query).await?;
                return found(links, "no such card".to_string());
            }
            _ => {}
        }
        let answer = match segments.as_slice() {
            ["v1", "logs"] => self.logs(key, query).await,
            ["v1", "traces", trace] => self.trace(key, trace).await,
            ["v1", "leads"] => self.leads(key, query).await,
            ["v1", "reports", "attribution"] => self.attribution(key, query).await,
            ["v1", "cards", card] => self.card(key, card).await,
            ["v1", "logo", "report"] => self.logo_report(key).await,
            ["v1", "express", "status"] => self.express_status(key).await,
            ["v1", "health"] => Ok(self.health(key).await?),
            ["v1", "payloads", trace] => self.payload(key, trace, request.trace).await,
            ["v1", "dead-letters"] => self.dead_letters(key, query).await,
            ["v1", "replay"] => self.replay(key, request).await,
            _ => self.call_queue(key, query).await,
        };
        answer.map(|v| (200, v))
    }

    /// The log, newest first: one integration's (or one error code's, or one trace's) in a
    /// time range, narrowed by result.
    async fn logs(&self, key: &OperatorKey, query: &HashMap<String, String>) -> Answer {
        let tenant = &key.tenant_id;
        let page = page_of(query)?;
        // Up to now, inclusive (the range's end is exclusive).
        let now = self.log.clock().now() + Duration::seconds(1);
        let to = moment(query, "to")?.unwrap_or(now);
        let from = moment(query, "from")?.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(ApiError::bad("from", "must be before `to`"));
        }
        let result = match query
            .get("result")
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
        {
            None => None,
            Some(text) => Some(
                serde_json::from_value::<LogResult>(json!(text)).map_err(|_| {
                    ApiError::bad(
                        "result",
                        "success, error, duplicate, ignored, parked or warning",
                    )
                })?,
            ),
        };
        let integration = match query
            .get("integration")
            .map(|i| i.trim())
            .filter(|i| !i.is_empty())
        {
            None => None,
            Some(text) => Some(
                Integration::ALL
                    .into_iter()
                    .find(|i| i.as_str() == text)
                    .ok_or_else(|| {
                        ApiError::bad("integration", format!("{text:?} is not an integration"))
                    })?,
            ),
        };
        let found = match (query.get("trace_id"), query.get("error_code"), integration) {
            (Some(trace), _, _) => self.logs.by_trace(tenant, trace, page).await?,
            (None, Some(code), _) => {
                self.logs
                    .by_error_code(tenant, code, from, to, page)
                    .await?
            }
            (None, None, Some(integration)) => {
                self.logs
                    .by_integration(tenant, integration, from, to, page)
                    .await?
            }
            (None, None, None) => {
                return Err(ApiError::bad(
                    "integration",
                    "name an integration, an error_code or a trace_id",
                ))
            }
        };
        let found = Page {
            items: found
                .items
                .into_iter()
                .filter(|r: &LogRecord| result.is_none_or(|want| r.result == want))
                .filter(|r| integration.is_none_or(|want| r.integration == want))
                .collect(),
            next: found.next,
        };
        Ok(page_json(found))
    }

    /// An event's whole path (webhook → queue → worker → partner calls), oldest first.
    async fn trace(&self, key: &OperatorKey, trace: &str) -> Answer {
        let logs = &self.logs;
        let tenant = &key.tenant_id;
        let mut records =
            crate::page::collect_all(100, |page| logs.by_trace(tenant, trace, page)).await?;
        if records.is_empty() {
            return Err(ApiError::not_found(format!("no records of trace {trace}")));
        }
        records.sort_by_key(|r| r.occurred_at);
        records.truncate(TRACE_RECORDS);
        Ok(json!({ "trace_id": trace, "records": records }))
    }

    async fn leads(&self, key: &OperatorKey, query: &HashMap<String, String>) -> Answer {
        let sources = [
            LeadSource::WhatsApp,
            LeadSource::MetaLeadAds,
            LeadSource::WebForm,
            LeadSource::Phone,
        ];
        let text = query.get("source").map(|s| s.trim()).unwrap_or_default();
        let source = sources
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| ApiError::bad("source", "whatsapp, meta_lead_ads, web_form or phone"))?;
        let page = page_of(query)?;
        let to =
            moment(query, "to")?.unwrap_or_else(|| self.log.clock().now() + Duration::seconds(1));
        let from = moment(query, "from")?.unwrap_or(to - Duration::days(30));
        let status = query
            .get("status")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        let owner = query
            .get("owner")
            .map(|o| o.trim())
            .filter(|o| !o.is_empty());
        let found = self
            .crm
            .leads_by_source(&key.tenant_id, source, from, to, page)
            .await?;
        // A list shows who, never how to reach them: phones, e-mails and identity numbers
        // are masked (the card route shows them to a key with the `cards` scope).
        let items: Vec<Value> = found
            .items
            .into_iter()
            .filter(|c| {
                status.is_none_or(|want| {
                    c.lead
                        .as_ref()
                        .is_some_and(|l| json!(l.status).as_str() == Some(want))
                })
            })
            .filter(|c| owner.is_none_or(|want| c.owner.as_deref() == Some(want)))
            .map(|card| {
                let (id, name) = (card.card_id.clone(), card.display_name.clone());
                let mut shown = json!(card);
                crate::mask::mask_json(&mut shown);
                shown["card_id"] = json!(id);
                shown["display_name"] = json!(name);
                shown
            })
            .collect();
        Ok(json!({ "items": items, "next": found.next }))
    }

    /// How many leads each source and campaign brought in `[from, to)` (default: this month so
    /// far, Istanbul), and how many are customers now.
    async fn attribution(&self, key: &OperatorKey, query: &HashMap<String, String>) -> Answer {
        let now = self.log.clock().now();
        let to = moment(query, "to")?.unwrap_or(now + Duration::seconds(1));
        let from = match moment(query, "from")? {
            Some(from) => from,
            None => crate::time::istanbul_today(&now)
                .with_day(1)
                .and_then(istanbul_day_start)
                .unwrap_or(to - Duration::days(30)),
        };
        if from >= to {
            return Err(ApiError::bad("from", "must be before `to`"));
        }
        if to - from > Duration::days(366) {
            return Err(ApiError::bad("from", "a range of at most a year"));
        }
        let report =
            crate::attribution::attribution_report(self.crm.clone(), &key.tenant_id, from, to)
                .await?;
        Ok(json!(report))
    }

    async fn card(&self, key: &OperatorKey, card_id: &str) -> Answer {
        let tenant = &key.tenant_id;
        let Some(card) = self.crm.card(tenant, card_id).await? else {
            return Err(ApiError::not_found(format!("no card {card_id}")));
        };
        let timeline = self.crm.timeline(tenant, card_id, TIMELINE).await?;
        // Messages we sent show how far they got (Meta's statuses update their record).
        let mut entries = Vec::with_capacity(timeline.len());
        for entry in timeline {
            let mut shown = json!(entry);
            let ours = entry.channel == crate::timeline::Channel::WhatsApp
                && entry.direction == crate::timeline::Direction::Outbound;
            if let (true, Some(wamid)) = (ours, &entry.external_id) {
                if let Some(message) = self.crm.outbound_message(tenant, wamid).await? {
                    shown["delivery"] = json!({ "status": message.status, "at": message.status_at,
                        "error_code": message.error_code });
                }
            }
            entries.push(shown);
        }
        Ok(json!({ "card": card, "timeline": entries }))
    }

    /// The latest Logo reconciliation report, and the run in progress if one is.
    async fn logo_report(&self, key: &OperatorKey) -> Answer {
        let tenant = &key.tenant_id;
        let last = self.reads.logo_reports(tenant, 1).await?.into_iter().next();
        let current = self.reads.current_run(tenant, Integration::Logo).await?;
        let running = current.filter(|r| r.get("finished_at").is_none_or(Value::is_null));
        Ok(json!({ "last": last, "running": running }))
    }

    /// The Express poll's state: the last finished run (its counts, and `needs_action` when
    /// the account has no sending package), and the run in progress if one is.
    async fn express_status(&self, key: &OperatorKey) -> Answer {
        let tenant = &key.tenant_id;
        let last = self
            .reads
            .express_reports(tenant, 1)
            .await?
            .into_iter()
            .next();
        let current = self.reads.current_run(tenant, Integration::Express).await?;
        let running = current.filter(|r| r.get("finished_at").is_none_or(Value::is_null));
        let needs_action = last.as_ref().and_then(|r| r.needs_action.clone());
        Ok(json!({ "last": last, "running": running, "needs_action": needs_action }))
    }

    /// A trace's delivery as received, unmasked: only for keys with the `payloads` scope, and
    /// each read is itself a log record (who, which trace).
    async fn payload(&self, key: &OperatorKey, trace: &str, request: &TraceId) -> Answer {
        let units = self.reads.delivery(&key.tenant_id, trace).await?;
        if units.is_empty() {
            return Err(ApiError::not_found(format!(
                "no archived delivery of trace {trace}"
            )));
        }
        let entry = LogEntry::new(
            key.tenant_id.clone(),
            Integration::CrmApi,
            LogDirection::Inbound,
            "crm_api.payload.read",
            LogResult::Success,
            request.clone(),
        )
        .starts_trace(self.log.clock().now())
        .external_id(trace.to_string())
        .external_message(format!("read by operator key {:?}", key.name));
        self.log.write(entry).await;
        let units: Vec<Value> = units
            .into_iter()
            .map(|(path, raw)| {
                let body = serde_json::from_str::<Value>(&raw).unwrap_or(Value::String(raw));
                json!({ "path": path, "body": body })
            })
            .collect();
        Ok(json!({ "trace_id": trace, "units": units }))
    }

    /// The integration's dead letters of this tenant, from the queue itself.
    async fn dead_letters(&self, key: &OperatorKey, query: &HashMap<String, String>) -> Answer {
        let integration = integration_of(query.get("integration").map(String::as_str))?;
        let letters = self.dead_letters.take(integration, MAX_LOOKED_AT).await?;
        self.dead_letters.give_back(integration, &letters).await?;
        let items: Vec<_> = letters
            .iter()
            .filter(|l| {
                l.envelope
                    .as_ref()
                    .is_some_and(|e| e.tenant_id == key.tenant_id)
            })
            .filter_map(DeadLetter::view)
            .collect();
        Ok(json!({ "integration": integration.as_str(), "items": items }))
    }

    /// `{"integration", "trace_id"}` re-queues that event; `{"integration", "from", "to"}`
    /// every one of the tenant's received in that range. Each replay is a log record on the
    /// event's own trace.
    async fn replay(&self, key: &OperatorKey, request: &ApiRequest<'_>) -> Answer {
        let body: HashMap<String, String> = serde_json::from_str(request.body)
            .map_err(|e| ApiError::bad("body", format!("a JSON object of strings: {e}")))?;
        let integration = integration_of(body.get("integration").map(String::as_str))?;
        let trace = body.get("trace_id").filter(|t| !t.is_empty());
        let (from, to) = (moment(&body, "from")?, moment(&body, "to")?);
        if trace.is_none() && (from.is_none() || to.is_none()) {
            return Err(ApiError::bad(
                "trace_id",
                "name a trace_id, or a time range (from and to)",
            ));
        }
        let wanted = |e: &crate::envelope::Envelope| {
            e.tenant_id == key.tenant_id
                && match trace {
                    Some(t) => e.trace_id.as_str() == t,
                    None => {
                        from.is_some_and(|f| e.received_at >= f)
                            && to.is_some_and(|t| e.received_at < t)
                    }
                }
        };
        let letters = self.dead_letters.take(integration, MAX_LOOKED_AT).await?;
        let (chosen, others): (Vec<DeadLetter>, Vec<DeadLetter>) = letters
            .into_iter()
            .partition(|l| l.envelope.as_ref().is_some_and(wanted));
        self.dead_letters.give_back(integration, &others).await?;
        let mut replayed = Vec::new();
        for letter in &chosen {
            let Some(original) = &letter.envelope else {
                continue;
            };
            let envelope = crate::envelope::Envelope {
                replay_of: Some(letter.message_id.clone()),
                ..original.clone()
            };
            self.dead_letters
                .redrive(integration, letter, &envelope)
                .await?;
            let entry = LogEntry::new(
                key.tenant_id.clone(),
                integration,
                LogDirection::Inbound,
                "crm_api.replay",
                LogResult::Success,
                envelope.trace_id.clone(),
            )
            .external_id(envelope.external_id.clone())
            .external_message(format!(
                "replayed by operator key {:?} (request {})",
                key.name, request.trace
            ));
            self.log.write(entry).await;
            replayed.push(envelope.trace_id.to_string());
        }
        Ok(
            json!({ "integration": integration.as_str(), "replayed": replayed.len(), "traces": replayed }),
        )
    }

    /// The tenant's call queue, or one agent's (`agent=USER#<id>` or `EXT#<extension>`).
    async fn call_queue(&self, key: &OperatorKey, query: &HashMap<String, String>) -> Answer {
        let agent = query
            .get("agent")
            .map(|a| a.trim())
            .filter(|a| !a.is_empty());
        if let Some(agent) = agent {
            if !(agent.starts_with("USER#") || agent.starts_with("EXT#")) {
                return Err(ApiError::bad("agent", "USER#<crm user> or EXT#<extension>"));
            }
        }
        let page = page_of(query)?;
        let found = self.calls.call_queue(&key.tenant_id, agent, page).await?;
        Ok(page_json(found))
    }
}
