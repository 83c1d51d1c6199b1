//! The `web-form` use case: one form post, answered 202 once it is queued (or with a 4xx that
//! names what is wrong), with CORS for the tenant's own origins.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;

use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::{FieldError, PortError};
use crate::http::HttpReply;
use crate::ingress::{ArchivedDelivery, InboundRequest, Kept};
use crate::log::{Integration, IntegrationLog, LogDirection, LogEntry, LogResult};
use crate::ports::{EventArchive, EventQueue, TenantDirectory};
use crate::tenant::{sha256_hex, TenantId, TenantRoute, WebFormSettings};
use crate::web_form::form::{is_bot, read_fields, validate};
use crate::web_form::{
    Claim, Rate, SubmissionGuard, API_KEY_HEADER, EVENT_KIND, IDEMPOTENCY_HEADER,
    IDEMPOTENCY_HOURS, MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_CHARS,
};

const OP: &str = "web_form.submit";
const ALLOW_HEADERS: &str = "content-type, x-api-key, idempotency-key";

pub struct WebFormIntake {
    pub tenants: Arc<dyn TenantDirectory>,
    pub queue: Arc<dyn EventQueue>,
    pub archive: Arc<dyn EventArchive>,
    pub guard: Arc<dyn SubmissionGuard>,
    pub log: IntegrationLog,
    pub retention_days: i64,
}

/// CORS headers for an allowed origin (none for a server-to-server post).
fn cors(origin: Option<&str>) -> Vec<(&'static str, String)> {
    match origin {
        Some(origin) => vec![
            ("access-control-allow-origin", origin.to_string()),
            ("vary", "Origin".to_string()),
        ],
        None => Vec::new(),
    }
}

fn origin_allowed(settings: &WebFormSettings, origin: &str) -> bool {
    let wanted = TenantRoute::web_form_origin(origin);
    settings
        .allowed_origins
        .iter()
        .any(|o| TenantRoute::web_form_origin(o) == wanted)
}

impl WebFormIntake {
    fn entry(&self, tenant: &TenantId, result: LogResult, trace: &TraceId) -> LogEntry {
        LogEntry::new(
            tenant.clone(),
            Integration::WebForm,
            LogDirection::Inbound,
            OP,
            result,
            trace.clone(),
        )
    }

    /// Logs the refusal (without the body: it is not authenticated or not usable) and answers.
    async fn refuse(
        &self,
        tenant: &TenantId,
        trace: &TraceId,
        status: u16,
        error: FieldError,
        headers: &[(&'static str, String)],
    ) -> HttpReply {
        self.log
            .write(
                self.entry(tenant, LogResult::Error, trace)
                    .error(&error.code, format!("{}: {}", error.field, error.message))
                    .http_status(status),
            )
            .await;
        HttpReply::error(
            status,
            &error.code,
            &error.message,
            Some(&error.field),
            trace.as_str(),
        )
        .with_headers(headers)
    }

    /// CORS headers for a refusal before the tenant is known: the page of a registered site can
    /// then read why (a mistyped or revoked key) instead of seeing a network error.
    async fn cors_if_registered(
        &self,
        request: &InboundRequest<'_>,
    ) -> Vec<(&'static str, String)> {
        let Some(origin) = request.header("origin") else {
            return Vec::new();
        };
        match self
            .tenants
            .resolve(&TenantRoute::web_form_origin(origin))
            .await
        {
            Ok(Some(_)) => cors(Some(origin)),
            _ => Vec::new(),
        }
    }

    /// `OPTIONS`: the browser's preflight. It carries no API key, so the origin itself must be
    /// one a tenant registered.
    pub async fn preflight(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        let Some(origin) = request.header("origin") else {
            return HttpReply::error(
                400,
                "origin_missing",
                "a preflight names its Origin",
                Some("origin"),
                trace.as_str(),
            );
        };
        match self
            .tenants
            .resolve(&TenantRoute::web_form_origin(origin))
            .await
        {
            Ok(Some(_)) => HttpReply::text(204, "")
                .with_headers(&cors(Some(origin)))
                .with_header("access-control-allow-methods", "POST, OPTIONS")
                .with_header("access-control-allow-headers", ALLOW_HEADERS)
                .with_header("access-control-max-age", "600"),
            Ok(None) => HttpReply::error(
                403,
                "origin_not_allowed",
                "this origin is not registered for any form",
                Some("origin"),
                trace.as_str(),
            ),
            Err(e) => HttpReply::error(
                503,
                e.code(),
                "temporarily unavailable, retry later",
                None,
                trace.as_str(),
            ),
        }
    }

    /// `POST`: one submission.
    pub async fn submit(&self, request: &InboundRequest<'_>, trace: &TraceId) -> HttpReply {
        let nobody = TenantId::unresolved();
        if request.body.len() > MAX_BODY_BYTES {
            let error = FieldError::new(
                "body",
                "body_too_large",
                format!("at most {MAX_BODY_BYTES} bytes"),
            );
            return self.refuse(&nobody, trace, 413, error, &[]).await;
        }
        let Some(key) = request
            .header(API_KEY_HEADER)
            .map(str::trim)
            .filter(|k| !k.is_empty())
        else {
            let error = FieldError::new(
                API_KEY_HEADER,
                "api_key_missing",
                "the form's API key is required",
            );
            let headers = self.cors_if_registered(request).await;
            return self.refuse(&nobody, trace, 401, error, &headers).await;
        };
        let unavailable = |e: PortError| {
            HttpReply::error(
                503,
                e.code(),
                "temporarily unavailable, retry later",
                None,
                trace.as_str(),
            )
        };
        let target = match self.tenants.resolve(&TenantRoute::web_form_key(key)).await {
            Ok(Some(target)) => target,
            Ok(None) => {
                let error = FieldError::new(
                    API_KEY_HEADER,
                    "api_key_invalid",
                    "unknown or revoked API key",
                );
                let headers = self.cors_if_registered(request).await;
                return self.refuse(&nobody, trace, 401, error, &headers).await;
            }
            Err(e) => return unavailable(e),
        };
        let tenant = target.tenant_id.clone();
        let settings = match self.tenants.tenant(&tenant).await {
            Ok(config) => config
                .and_then(|c| c.integrations.web_form)
                .unwrap_or(WebFormSettings {
                    allowed_origins: Vec::new(),
                    submissions_per_minute: 30,
                }),
            Err(e) => return unavailable(e),
        };
        let origin = request.header("origin");
        if let Some(origin) = origin.filter(|o| !origin_allowed(&settings, o)) {
            let error = FieldError::new(
                "origin",
                "origin_not_allowed",
                format!("{origin} may not post this tenant's forms"),
            );
            return self.refuse(&tenant, trace, 403, error, &[]).await;
        }
        let headers = cors(origin);
        let now = self.log.clock().now();
        match self
            .guard
            .admit(
                &tenant,
                &sha256_hex(key),
                settings.submissions_per_minute,
                now,
            )
            .await
        {
            Ok(Rate::Allowed) => {}
            Ok(Rate::Limited { retry_after_secs }) => {
                let error = FieldError::new(
                    API_KEY_HEADER,
                    "rate_limited",
                    format!(
                        "more than {} submissions a minute; retry after {retry_after_secs}s",
                        settings.submissions_per_minute
                    ),
                );
                return self
                    .refuse(&tenant, trace, 429, error, &headers)
                    .await
                    .with_header("retry-after", retry_after_secs.to_string());
            }
            Err(e) => return unavailable(e).with_headers(&headers),
        }
        let fields = match read_fields(request.body, request.header("content-type")) {
            Ok(fields) => fields,
            Err(error) => return self.refuse(&tenant, trace, 400, error, &headers).await,
        };
        let payload = serde_json::to_value(&fields).unwrap_or_default();
        if is_bot(&fields) {
            // Answered like a success, so the bot learns nothing; kept out of the CRM.
            self.log
                .write(
                    self.entry(&tenant, LogResult::Ignored, trace)
                        .starts_trace(now)
                        .http_status(202)
                        .payload(payload)
                        .external_message("honeypot field filled: dropped as a bot"),
                )
                .await;
            return HttpReply::json(
                202,
                &json!({ "status": "accepted", "trace_id": trace.as_str() }),
            )
            .with_headers(&headers);
        }
        let idempotency_key = match request.header(IDEMPOTENCY_HEADER).map(str::trim) {
            Some(k) if k.is_empty() || k.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS => {
                let error = FieldError::new(
                    IDEMPOTENCY_HEADER,
                    "invalid_idempotency_key",
                    format!("1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
                );
                return self.refuse(&tenant, trace, 400, error, &headers).await;
            }
            other => other,
        };
        let submission_id = idempotency_key
            .map(|k| format!("key:{}", sha256_hex(k)))
            .unwrap_or_else(|| trace.to_string());
        let lead = match validate(&fields, &submission_id, now) {
            Ok(lead) => lead,
            Err(errors) => {
                let first = errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| FieldError::missing("body"));
                self.log
                    .write(
                        self.entry(&tenant, LogResult::Error, trace)
                            .starts_trace(now)
                            .error(
                                &first.code,
                                format!(
                                    "{} field(s) invalid, first {}: {}",
                                    errors.len(),
                                    first.field,
                                    first.message
                                ),
                            )
                            .http_status(422)
                            .payload(payload),
                    )
                    .await;
                return HttpReply::invalid_with(422, &errors, trace.as_str())
                    .with_headers(&headers);
            }
        };
        if let Some(key) = idempotency_key {
            let expires = now + Duration::hours(IDEMPOTENCY_HOURS);
            let claim = Claim {
                trace_id: trace.to_string(),
                fingerprint: sha256_hex(&String::from_utf8_lossy(request.body)),
            };
            match self.guard.claim(&tenant, key, &claim, expires).await {
                Ok(None) => {}
                Ok(Some(first)) if first.fingerprint != claim.fingerprint => {
                    let error = FieldError::new(
                        IDEMPOTENCY_HEADER,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for another submission; use a new key",
                    );
                    return self.refuse(&tenant, trace, 422, error, &headers).await;
                }
                Ok(Some(first)) => {
                    self.log
                        .write(
                            crate::idempotency::duplicate(self.entry(
                                &tenant,
                                LogResult::Duplicate,
                                trace,
                            ))
                            .starts_trace(now)
                            .http_status(202)
                            .external_id(submission_id.clone()),
                        )
                        .await;
                    return HttpReply::json(
                        202,
                        &json!({ "status": "queued", "trace_id": first.trace_id, "replayed": true }),
                    )
                    .with_headers(&headers);
                }
                Err(e) => return unavailable(e).with_headers(&headers),
            }
        }
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            tenant_id: tenant.clone(),
            integration: Integration::WebForm,
            kind: EVENT_KIND.into(),
            external_id: submission_id.clone(),
            trace_id: trace.clone(),
            received_at: now,
            ordering_key: None,
            replay_of: None,
            payload: serde_json::to_value(&lead).unwrap_or_default(),
        };
        let kept = Kept::Delivery(ArchivedDelivery {
            tenant_id: tenant.clone(),
            integration: Integration::WebForm,
            trace_id: trace.clone(),
            received_at: now,
            units: vec![(
                "body".into(),
                String::from_utf8_lossy(request.body).into_owned(),
            )],
            released: None,
            expires_at: (now + Duration::days(self.retention_days)).timestamp(),
        });
        let (queued, archived) = futures::join!(
            self.queue.enqueue(std::slice::from_ref(&envelope)),
            self.archive.keep(std::slice::from_ref(&kept))
        );
        if let Err(e) = queued.and(archived) {
            if let Some(key) = idempotency_key {
                // Not durable: the key goes back, so the browser's retry is not taken for a
                // duplicate of a submission that never was. (If this fails too, the claim
                // expires; a retry then answers with the lost trace id, logged here.)
                if let Err(release) = self.guard.release(&tenant, key).await {
                    tracing::error!(trace_id = %trace, %release, "idempotency key not released");
                }
            }
            self.log
                .write(
                    self.entry(&tenant, LogResult::Error, trace)
                        .starts_trace(now)
                        .error("enqueue_failed", e.to_string())
                        .http_status(503),
                )
                .await;
            return unavailable(e).with_headers(&headers);
        }
        self.log
            .write(
                self.entry(&tenant, LogResult::Success, trace)
                    .starts_trace(now)
                    .http_status(202)
                    .payload(payload)
                    .external_id(submission_id)
                    .external_message("submission queued"),
            )
            .await;
        HttpReply::json(
            202,
            &json!({ "status": "queued", "trace_id": trace.as_str() }),
        )
        .with_headers(&headers)
    }
}
