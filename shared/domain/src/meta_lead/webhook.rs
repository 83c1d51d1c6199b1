//! The `meta-lead` webhook: Page `leadgen` changes through the shared [`Ingress`], routed by
//! Page id, one event per lead. The answers are not in the webhook: the worker fetches them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ingress::json::{field_error, id_text, split_meta_changes, strict, unparsed};
use crate::ingress::{InboundRequest, IngressEvent, IngressPorts, Parsed, Unit, WebhookSpec};
use crate::log::Integration;
use crate::meta_lead::SECRET_INTEGRATION;
use crate::meta_webhook::{MetaWebhook, WebhookSettings};
use crate::tenant::TenantRoute;
use crate::time::from_unix_seconds;

pub const OBJECT: &str = "page";
pub const FIELD: &str = "leadgen";
pub const EVENT_KIND: &str = "meta.leadgen";
/// Meta batches a handful of leads per delivery; a forged body cannot make millions of units.
pub const MAX_UNITS: usize = 1000;
/// Meta documents deliveries of up to 3 MB; a leadgen change is a few hundred bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// One lead to fetch, as queued: every id a string (Meta sends numbers above 2^53 too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadgenEvent {
    pub leadgen_id: String,
    pub page_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adgroup_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<DateTime<Utc>>,
}

pub struct MetaLeadSpec {
    pub max_body_bytes: usize,
}

impl WebhookSpec for MetaLeadSpec {
    fn integration(&self) -> Integration {
        Integration::MetaLeadAds
    }

    fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError> {
        split(request.body)
    }

    fn parse(&self, unit: &Unit) -> Vec<Parsed> {
        parse_unit(unit)
    }
}

/// One unit per `entry[].changes[]` item, routed by the entry's Page id (or the change's
/// `value.page_id`). Only the outer shape is checked here.
pub fn split(body: &[u8]) -> Result<Vec<Unit>, FieldError> {
    split_meta_changes(body, OBJECT, MAX_UNITS, |change, page| {
        page.map(str::to_string)
            .or_else(|| value_page_id(change))
            .map(TenantRoute::MetaPage)
    })
}

fn value_page_id(change: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Probe {
        value: Option<ProbeValue>,
    }
    #[derive(Deserialize)]
    struct ProbeValue {
        page_id: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_str(change).ok()?;
    probe.value?.page_id.as_ref().and_then(id_text)
}

/// A `leadgen` change becomes one event; another field is ignored (named in the log); a change
/// that does not validate is kept whole with the field and the reason.
pub fn parse_unit(unit: &Unit) -> Vec<Parsed> {
    #[derive(Deserialize)]
    struct Change {
        field: String,
        value: serde_json::Value,
    }
    #[derive(Deserialize)]
    struct Value {
        leadgen_id: serde_json::Value,
        #[serde(default)]
        page_id: Option<serde_json::Value>,
        #[serde(default)]
        form_id: Option<serde_json::Value>,
        #[serde(default)]
        ad_id: Option<serde_json::Value>,
        #[serde(default)]
        adgroup_id: Option<serde_json::Value>,
        #[serde(default)]
        created_time: Option<serde_json::Value>,
    }
    let change: Change = match strict(&unit.raw, &unit.path) {
        Ok(change) => change,
        Err(e) => return vec![unparsed(&unit.path, &unit.raw, vec![e])],
    };
    if change.field != FIELD {
        return vec![Parsed::Ignored(format!("field {}", change.field))];
    }
    let at = format!("{}.value", unit.path);
    let value: Value = match serde_path_to_error::deserialize(&change.value) {
        Ok(v) => v,
        Err(e) => return vec![unparsed(&unit.path, &unit.raw, vec![field_error(e, &at)])],
    };
    let optional_id = |v: &Option<serde_json::Value>, name: &str| match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => id_text(v)
            .map(Some)
            .ok_or_else(|| FieldError::new(format!("{at}.{name}"), "invalid_id", "not an id")),
    };
    let mut errors = Vec::new();
    let leadgen_id = id_text(&value.leadgen_id).unwrap_or_else(|| {
        errors.push(FieldError::new(
            format!("{at}.leadgen_id"),
            "invalid_id",
            "must be a number or a string of digits",
        ));
        String::new()
    });
    let mut id = |v: &Option<serde_json::Value>, name: &str| {
        optional_id(v, name).unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    let (page_id, form_id, ad_id, adgroup_id) = (
        id(&value.page_id, "page_id"),
        id(&value.form_id, "form_id"),
        id(&value.ad_id, "ad_id"),
        id(&value.adgroup_id, "adgroup_id"),
    );
    let created_time = match &value.created_time {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            let parsed = id_text(v).and_then(|s| from_unix_seconds(&s));
            if parsed.is_none() {
                errors.push(FieldError::new(
                    format!("{at}.created_time"),
                    "invalid_time",
                    "must be unix seconds",
                ));
            }
            parsed
        }
    };
    if !errors.is_empty() {
        return vec![unparsed(&unit.path, &unit.raw, errors)];
    }
    let event = LeadgenEvent {
        page_id: page_id.or_else(|| unit.context.clone()).unwrap_or_default(),
        leadgen_id: leadgen_id.clone(),
        form_id,
        ad_id,
        adgroup_id,
        created_time,
    };
    vec![Parsed::Event(IngressEvent {
        kind: EVENT_KIND.into(),
        external_id: leadgen_id,
        ordering_key: None,
        payload: serde_json::to_value(&event).unwrap_or_default(),
    })]
}

/// The Lead Ads webhook: the Meta webhook (handshake, app signature, ingress) with Lead Ads'
/// router and parser; the handshake's verify token is in the tenant's `meta` secret.
pub struct MetaLeadWebhook(MetaWebhook);

impl MetaLeadWebhook {
    pub fn new(ports: IngressPorts, settings: WebhookSettings) -> Self {
        let spec = Arc::new(MetaLeadSpec {
            max_body_bytes: settings.max_body_bytes,
        });
        Self(MetaWebhook::new(spec, SECRET_INTEGRATION, ports, settings))
    }
}

impl std::ops::Deref for MetaLeadWebhook {
    type Target = MetaWebhook;

    fn deref(&self) -> &MetaWebhook {
        &self.0
    }
}
