//! The one pipeline every webhook runs: size cap → tenant routing → authentication → per-event
//! parsing → durable enqueue (and the raw archive) → answer → log. An integration supplies only
//! its [`WebhookSpec`] (router and parser) and an [`Authenticator`].
//!
//! Once a request is authenticated its content never earns a 4xx: an event that does not parse
//! is kept whole as an `unparsed` event, and an event for a route no tenant owns yet is held as
//! `unrouted` until the route is registered. Before authentication the work is bounded: a few
//! route look-ups, no payload in the log, no secret re-read more than once a minute.

mod answer;
pub mod auth;
pub mod json;
mod release;
mod types;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::{FieldError, PortError};
use crate::http::HttpReply;
use crate::log::{IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::page::PageRequest;
use crate::ports::{EventArchive, EventQueue, SecretStore, TenantDirectory};
use crate::tenant::{RouteTarget, TenantId, TenantRoute};

pub use auth::{AuthError, Authenticator};
pub use types::*;

/// Routes looked up before the request is authenticated; a forged body naming thousands of
/// ids costs at most this many reads.
pub const MAX_ROUTE_LOOKUPS_BEFORE_AUTH: usize = 3;

#[derive(Debug, Clone)]
pub struct IngressSettings {
    /// The app that authenticates a delivery none of whose routes is registered yet (the
    /// deployment's own Meta app), so such events can be held instead of refused.
    pub default_app_id: Option<String>,
    /// How long raw deliveries and held events are kept (the log retention).
    pub retention_days: i64,
}

/// A request that passed authentication, split by tenant.
struct Admitted {
    by_tenant: Vec<(TenantId, Vec<Unit>)>,
    unrouted: Vec<Unit>,
    /// The credentials (secret names) that verified it: a held event is released only to a
    /// tenant whose own credential is among them.
    verified_by: Vec<String>,
}

pub struct Ingress {
    spec: Arc<dyn WebhookSpec>,
    auth: Arc<dyn Authenticator>,
    tenants: Arc<dyn TenantDirectory>,
    secrets: Arc<dyn SecretStore>,
    queue: Arc<dyn EventQueue>,
    archive: Arc<dyn EventArchive>,
    log: IntegrationLog,
    settings: IngressSettings,
}

/// The ports an ingress needs, named so wiring reads clearly.
pub struct IngressPorts {
    pub tenants: Arc<dyn TenantDirectory>,
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn EventQueue>,
    pub archive: Arc<dyn EventArchive>,
    pub log: IntegrationLog,
}

const OP: &str = "webhook.delivery";

fn content_id(raw: &str) -> String {
    hex::encode(&Sha256::digest(raw.as_bytes())[..16])
}

impl Ingress {
    pub fn new(
        spec: Arc<dyn WebhookSpec>,
        auth: Arc<dyn Authenticator>,
        ports: IngressPorts,
        settings: IngressSettings,
    ) -> Self {
        Self {
            spec,
            auth,
            tenants: ports.tenants,
            secrets: ports.secrets,
            queue: ports.queue,
            archive: ports.archive,
            log: ports.log,
            settings,
        }
    }

    pub fn log(&self) -> &IntegrationLog {
        &self.log
    }

    fn entry(&self, tenant: &TenantId, result: LogResult, trace: &TraceId) -> LogEntry {
        LogEntry::new(
            tenant.clone(),
            self.spec.integration(),
            LogDirection::Inbound,
            OP,
            result,
            trace.clone(),
        )
    }

    /// A request refused before authentication: logged as size + hash + reason, never its
    /// payload (it may be forged, and it is not ours to keep).
    async fn refuse(
        &self,
        tenant: &TenantId,
        request: &InboundRequest<'_>,
        trace: &TraceId,
        status: u16,
        errors: &[FieldError],
    ) -> HttpReply {
        let first = errors.first();
        let code = first.map(|e| e.code.as_str()).unwrap_or("invalid_request");
        let message = first
            .map(|e| format!("{}: {}", e.field, e.message))
            .unwrap_or_default();
        self.log
            .write(
                self.entry(tenant, LogResult::Error, trace)
                    .error(code, message)
                    .http_status(status)
                    .external_message(format!(
                        "{} byte body, sha256 {}",
                        request.body.len(),
                        hex::encode(Sha256::digest(request.body))
                    )),
            )
            .await;
        let reply = HttpReply::invalid(errors, trace.as_str());
        HttpReply { status, ..reply }
    }

    /// 5xx for our own failures: partners retry those, so nothing is lost.
    async fn unavailable(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        error: &PortError,
    ) -> HttpReply {
        self.unavailable_as(tenant, trace, error.code(), error)
            .await
    }

    async fn unavailable_as(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        code: &str,
        error: &PortError,
    ) -> HttpReply {
        self.log
            .write(
                self.entry(tenant, LogResult::Error, trace)
                    .error(code, error.to_string())
                    .http_status(503),
            )
            .await;
        HttpReply::error(
            503,
            code,
            "temporarily unavailable, retry later",
            None,
            trace.as_str(),
        )
    }

    /// Steps 1-3: size cap, routing, authentication. `Err` is the answer to send.
    async fn admit(
        &self,
        request: &InboundRequest<'_>,
        trace: &TraceId,
    ) -> Result<Admitted, HttpReply> {
        let nobody = TenantId::unresolved();
        let limit = self.spec.max_body_bytes();
        if request.body.len() > limit {
            let error = FieldError::new(
                "body",
                "body_too_large",
                format!(
                    "body of {} bytes exceeds the {limit} byte limit",
                    request.body.len()
                ),
            );
            return Err(self.refuse(&nobody, request, trace, 413, &[error]).await);
        }
        let units = match self.spec.split(request) {
            Ok(units) => units,
            Err(error) => {
                let status = if self.spec.credential_field() == Some(error.field.as_str()) {
                    401
                } else {
                    400
                };
                return Err(self.refuse(&nobody, request, trace, status, &[error]).await);
            }
        };
        let mut seen: HashSet<&TenantRoute> = HashSet::with_capacity(units.len());
        let routes: Vec<&TenantRoute> = units
            .iter()
            .map(|u| &u.route)
            .filter(|r| seen.insert(*r))
            .collect();
        // Before authentication: a fixed, small number of look-ups.
        let mut targets: Vec<(TenantRoute, Option<RouteTarget>)> = Vec::new();
        for route in routes.iter().take(MAX_ROUTE_LOOKUPS_BEFORE_AUTH) {
            match self.tenants.resolve(route).await {
                Ok(target) => targets.push(((*route).clone(), target)),
                Err(e) => return Err(self.unavailable(&nobody, trace, &e).await),
            }
        }
        let mut credentials: Vec<RouteTarget> = Vec::new();
        for target in targets.iter().filter_map(|(_, t)| t.as_ref()) {
            let name = self.auth.secret_name(target);
            if !credentials.iter().any(|c| self.auth.secret_name(c) == name) || name.is_none() {
                credentials.push(target.clone());
            }
        }
        if credentials.is_empty() {
            if let Some(field) = self.spec.credential_field() {
                let error = FieldError::new(field, "unauthorized", "no tenant has this credential");
                return Err(self.refuse(&nobody, request, trace, 401, &[error]).await);
            }
            match &self.settings.default_app_id {
                Some(app) => credentials.push(RouteTarget::tenant(nobody.clone()).with_app(app)),
                None => {
                    let error = FieldError::new(
                        "route",
                        "unknown_tenant",
                        "no tenant is connected to this delivery's account",
                    );
                    return Err(self.refuse(&nobody, request, trace, 400, &[error]).await);
                }
            }
        }
        let mut verified: HashSet<Option<String>> = HashSet::new();
        for target in &credentials {
            self.authenticate(request, target, trace).await?;
            verified.insert(self.auth.secret_name(target));
        }
        // Authenticated: the remaining routes may be looked up now.
        for route in routes.iter().skip(MAX_ROUTE_LOOKUPS_BEFORE_AUTH) {
            match self.tenants.resolve(route).await {
                Ok(target) => targets.push(((*route).clone(), target)),
                Err(e) => return Err(self.unavailable(&nobody, trace, &e).await),
            }
        }
        // A tenant whose own credential was not checked yet must pass it too.
        for target in targets.iter().filter_map(|(_, t)| t.as_ref()) {
            let name = self.auth.secret_name(target);
            if name.is_none() || !verified.contains(&name) {
                self.authenticate(request, target, trace).await?;
                verified.insert(name);
            }
        }
        let mut admitted = Admitted {
            by_tenant: Vec::new(),
            unrouted: Vec::new(),
            verified_by: verified.into_iter().flatten().collect(),
        };
        for unit in units {
            let target = targets
                .iter()
                .find(|(r, _)| *r == unit.route)
                .and_then(|(_, t)| t.clone());
            match target {
                Some(t) => match admitted
                    .by_tenant
                    .iter_mut()
                    .find(|(tenant, _)| *tenant == t.tenant_id)
                {
                    Some((_, units)) => units.push(unit),
                    None => admitted.by_tenant.push((t.tenant_id, vec![unit])),
                },
                None => admitted.unrouted.push(unit),
            }
        }
        Ok(admitted)
    }

    /// Verifies against the target's secret; on a possibly-rotated mismatch, asks the store for
    /// a fresh copy once (the store itself re-reads at most once a minute per secret).
    async fn authenticate(
        &self,
        request: &InboundRequest<'_>,
        target: &RouteTarget,
        trace: &TraceId,
    ) -> Result<(), HttpReply> {
        let name = self.auth.secret_name(target);
        let mut refreshed = false;
        loop {
            let secret = match &name {
                None => None,
                Some(name) => {
                    let read = if refreshed {
                        self.secrets.refresh(name).await
                    } else {
                        self.secrets.get(name).await
                    };
                    match read {
                        Ok(secret) => Some(secret),
                        Err(e) => return Err(self.unavailable(&target.tenant_id, trace, &e).await),
                    }
                }
            };
            match self.auth.verify(request, target, secret.as_ref()) {
                Ok(()) => return Ok(()),
                Err(e) if e.stale_secret_possible && !refreshed && name.is_some() => {
                    refreshed = true
                }
                Err(e) if e.code == "secret_malformed" => {
                    let port = PortError::Rejected(format!(
                        "credential {} is malformed: {}",
                        name.unwrap_or_default(),
                        e.message
                    ));
                    return Err(self.unavailable(&target.tenant_id, trace, &port).await);
                }
                Err(e) => {
                    let error = FieldError::new(e.field, e.code, e.message);
                    return Err(self
                        .refuse(&target.tenant_id, request, trace, 401, &[error])
                        .await);
                }
            }
        }
    }

    /// The asynchronous webhook: every event that parses is durable in the queue, every one
    /// that does not is kept, and only then the answer is 200.
    pub async fn deliver(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        let admitted = match self.admit(request, trace).await {
            Ok(admitted) => admitted,
            Err(reply) => return reply,
        };
        let (envelopes, kept, reports) = self.prepare(&admitted, trace);
        let (queued, archived) =
            futures::join!(self.queue.enqueue(&envelopes), self.archive.keep(&kept));
        let failure = match (queued, archived) {
            (Err(e), _) => Some(("enqueue_failed", e)),
            (_, Err(e)) => Some(("archive_failed", e)),
            _ => None,
        };
        if let Some((code, e)) = failure {
            let tenant = admitted
                .by_tenant
                .first()
                .map(|(t, _)| t.clone())
                .unwrap_or_else(TenantId::unresolved);
            return self.unavailable_as(&tenant, trace, code, &e).await;
        }
        for report in reports {
            self.log_report(report, trace, true, 200).await;
        }
        if !admitted.unrouted.is_empty() {
            let mut routes: Vec<String> = admitted.unrouted.iter().map(|u| u.route.key()).collect();
            routes.dedup();
            self.log
                .write(
                    self.entry(&TenantId::unresolved(), LogResult::Error, trace)
                        .error(
                            "unrouted_event",
                            format!(
                                "{} part(s) for routes no tenant owns ({}); held until registered",
                                admitted.unrouted.len(),
                                routes.join(", ")
                            ),
                        )
                        .http_status(200),
                )
                .await;
        }
        HttpReply::json(
            200,
            &json!({
                "status": "queued",
                "events": envelopes.len(),
                "held": kept.iter().filter(|k| matches!(k, Kept::Held(_))).count(),
                "trace_id": trace.as_str(),
            }),
        )
    }

    /// Every admitted unit parsed: envelopes to queue, items to keep (raw deliveries, unparsed
    /// and unrouted events), and one report per tenant for the log.
    fn prepare(
        &self,
        admitted: &Admitted,
        trace: &TraceId,
    ) -> (Vec<Envelope>, Vec<Kept>, Vec<TenantReport>) {
        let received_at = self.log.clock().now();
        let expires_at = (received_at + Duration::days(self.settings.retention_days)).timestamp();
        let (mut envelopes, mut kept, mut reports) = (Vec::new(), Vec::new(), Vec::new());
        for (tenant, units) in &admitted.by_tenant {
            reports.push(self.parse_for(
                tenant,
                units,
                trace,
                received_at,
                expires_at,
                &mut envelopes,
                &mut kept,
            ));
        }
        for unit in &admitted.unrouted {
            kept.push(Kept::Held(HeldEvent {
                hold: Hold::Unrouted(unit.route.clone()),
                verified_by: admitted.verified_by.clone(),
                integration: self.spec.integration(),
                id: content_id(&unit.raw),
                trace_id: trace.clone(),
                received_at,
                path: unit.path.clone(),
                raw: unit.raw.clone(),
                context: unit.context.clone(),
                reason: "no tenant owns this route yet".into(),
                expires_at,
            }));
        }
        (envelopes, kept, reports)
    }

    #[allow(clippy::too_many_arguments)]
    fn parse_for(
        &self,
        tenant: &TenantId,
        units: &[Unit],
        trace: &TraceId,
        received_at: DateTime<Utc>,
        expires_at: i64,
        envelopes: &mut Vec<Envelope>,
        kept: &mut Vec<Kept>,
    ) -> TenantReport {
        let mut report = TenantReport {
            tenant: tenant.clone(),
            received_at,
            payload: units
                .iter()
                .map(|u| serde_json::from_str(&u.raw).unwrap_or(serde_json::Value::Null))
                .collect(),
            queued: 0,
            unparsed: Vec::new(),
            first_errors: None,
            notices: Vec::new(),
            ignored: Vec::new(),
        };
        kept.push(Kept::Delivery(ArchivedDelivery {
            tenant_id: tenant.clone(),
            integration: self.spec.integration(),
            trace_id: trace.clone(),
            received_at,
            units: units
                .iter()
                .map(|u| (u.path.clone(), u.raw.clone()))
                .collect(),
            released: None,
            expires_at,
        }));
        for unit in units {
            for parsed in self.spec.parse(unit) {
                match parsed {
                    Parsed::Event(event) => {
                        report.queued += 1;
                        envelopes.push(Envelope {
                            v: ENVELOPE_VERSION,
                            tenant_id: tenant.clone(),
                            integration: self.spec.integration(),
                            kind: event.kind,
                            external_id: event.external_id,
                            trace_id: trace.clone(),
                            received_at,
                            ordering_key: event.ordering_key,
                            replay_of: None,
                            payload: event.payload,
                        })
                    }
                    Parsed::Unparsed { path, raw, errors } => {
                        let reason = errors
                            .iter()
                            .map(|e| format!("{}: {}", e.field, e.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        report
                            .unparsed
                            .push((path.clone(), raw.clone(), reason.clone()));
                        report.first_errors.get_or_insert(errors);
                        kept.push(Kept::Held(HeldEvent {
                            hold: Hold::Unparsed(tenant.clone()),
                            verified_by: Vec::new(),
                            integration: self.spec.integration(),
                            id: content_id(&raw),
                            trace_id: trace.clone(),
                            received_at,
                            path,
                            raw,
                            context: unit.context.clone(),
                            reason,
                            expires_at,
                        }));
                    }
                    Parsed::Notice {
                        code,
                        title,
                        details,
                    } => report.notices.push((code, title, details)),
                    Parsed::Ignored(what) => report.ignored.push(what),
                }
            }
        }
        report
    }

    /// One success record per tenant holding only that tenant's parts, then one error record
    /// per unparsed event and per partner notice.
    async fn log_report(
        &self,
        report: TenantReport,
        trace: &TraceId,
        with_summary: bool,
        status: u16,
    ) {
        let mut summary = format!("{} event(s) queued", report.queued);
        if !report.unparsed.is_empty() {
            summary.push_str(&format!("; {} kept as unparsed", report.unparsed.len()));
        }
        if !report.ignored.is_empty() {
            summary.push_str(&format!("; not handled: {}", report.ignored.join(", ")));
        }
        if with_summary {
            self.log
                .write(
                    self.entry(&report.tenant, LogResult::Success, trace)
                        .starts_trace(report.received_at)
                        .http_status(status)
                        .payload(serde_json::Value::Array(report.payload))
                        .external_message(summary),
                )
                .await;
        }
        for (path, raw, reason) in report.unparsed {
            self.log
                .write(
                    self.entry(&report.tenant, LogResult::Error, trace)
                        .starts_trace(report.received_at)
                        .error("unparsed_event", format!("{path}: {reason}"))
                        .http_status(status)
                        .payload(
                            serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw)),
                        ),
                )
                .await;
        }
        for (code, title, details) in report.notices {
            self.log
                .write(
                    LogEntry::new(
                        report.tenant.clone(),
                        self.spec.integration(),
                        LogDirection::Inbound,
                        "webhook.error",
                        LogResult::Error,
                        trace.clone(),
                    )
                    .starts_trace(report.received_at)
                    .error(&code, title)
                    .external_message(details.unwrap_or_default()),
                )
                .await;
        }
    }
}

struct TenantReport {
    tenant: TenantId,
    /// When the delivery arrived: the trace's start, shared by the worker's records.
    received_at: DateTime<Utc>,
    payload: Vec<serde_json::Value>,
    queued: usize,
    unparsed: Vec<(String, String, String)>,
    /// What was wrong with the first unparsed part (a synchronous route answers with it).
    first_errors: Option<Vec<FieldError>>,
    notices: Vec<(String, String, Option<String>)>,
    ignored: Vec<String>,
}

#[cfg(test)]
mod tests;
