//! Outbound WhatsApp from the operator API: send a template or a text to a card (queued, then
//! sent once by the worker), follow a send, and the `wa.me` link of a card's phones.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::api::OperatorApi;
use super::keys::OperatorKey;
use crate::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use crate::error::PortError;
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
use crate::ports::{EventQueue, TenantDirectory};
use crate::whatsapp::outbound::{SendRules, SendStore};
use crate::whatsapp::send::{wa_me_link, SendRecord, SendRequest, SendState, KIND_SEND};

/// What sending needs; a deployment without the send queue answers 503 on the send route.
pub struct SendPorts {
    pub tenants: Arc<dyn TenantDirectory>,
    pub sends: Arc<dyn SendStore>,
    pub queue: Option<Arc<dyn EventQueue>>,
}

fn error_body(
    status: u16,
    code: &str,
    message: &str,
    field: Option<&str>,
    trace: &str,
) -> (u16, Value) {
    let mut error = json!({ "code": code, "message": message, "trace_id": trace });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    (status, json!({ "error": error }))
}

/// A send as the API shows it: the record, and Meta's delivery status once statuses came.
async fn send_view(
    api: &OperatorApi,
    key: &OperatorKey,
    record: &SendRecord,
) -> Result<Value, PortError> {
    let delivery = match &record.wamid {
        Some(wamid) => api.crm.outbound_message(&key.tenant_id, wamid).await?,
        None => None,
    };
    Ok(json!({ "send": record, "delivery": delivery }))
}

impl OperatorApi {
    /// `POST /v1/whatsapp/messages`: 202 with the queued send; the same `send_id` again
    /// answers 200 with that send and sends nothing more.
    pub(super) async fn send_whatsapp(
        &self,
        key: &OperatorKey,
        body: &str,
        trace: &TraceId,
    ) -> Result<(u16, Value), PortError> {
        let t = trace.as_str();
        let request = match SendRequest::parse(body) {
            Ok(request) => request,
            Err(e) => {
                return Ok(error_body(
                    400,
                    "invalid_parameter",
                    &format!("{}: {}", e.field, e.message),
                    Some(&e.field),
                    t,
                ))
            }
        };
        let Some(queue) = &self.send.queue else {
            return Ok(error_body(
                503,
                "unavailable",
                "sending is not configured here (no send queue)",
                None,
                t,
            ));
        };
        let now = self.log.clock().now();
        let send_id = request
            .send_id
            .clone()
            .unwrap_or_else(|| self.log.ids().new_id());
        let rules = SendRules {
            crm: self.crm.clone(),
            tenants: self.send.tenants.clone(),
        };
        let record = match rules
            .prepare(&key.tenant_id, &request, &send_id, &key.name, trace, now)
            .await?
        {
            Ok(record) => record,
            Err(refused) => {
                let (status, mut body) = error_body(
                    refused.status,
                    &refused.problem.code,
                    &refused.problem.message,
                    refused.field.as_deref(),
                    t,
                );
                body["error"]["message_tr"] = json!(refused.problem.message_tr);
                return Ok((status, body));
            }
        };
        let existing = self.send.sends.create_send(&key.tenant_id, &record).await?;
        let (status, record) = match existing {
            // Still queued: its queue message may never have been sent, so it goes again (the
            // worker's claim keeps it to one send).
            Some(existing) if existing.state != SendState::Queued => {
                let view = send_view(self, key, &existing).await?;
                return Ok((
                    200,
                    json!({ "duplicate": true, "send": view["send"], "delivery": view["delivery"] }),
                ));
            }
            Some(existing) => (200, existing),
            None => (202, record),
        };
        let payload = SendRequest {
            send_id: Some(record.send_id.clone()),
            requested_by: Some(key.name.clone()),
            ..request
        };
        let trace = TraceId::new(record.trace_id.clone());
        let envelope = Envelope {
            v: ENVELOPE_VERSION,
            tenant_id: key.tenant_id.clone(),
            integration: Integration::WhatsApp,
            kind: KIND_SEND.to_string(),
            external_id: record.send_id.clone(),
            trace_id: trace.clone(),
            received_at: record.requested_at,
            // One customer's messages go in order.
            ordering_key: Some(record.to.clone()),
            replay_of: None,
            payload: serde_json::to_value(&payload).unwrap_or_default(),
        };
        queue.enqueue(std::slice::from_ref(&envelope)).await?;
        if status == 202 {
            let entry = LogEntry::new(
                key.tenant_id.clone(),
                Integration::WhatsApp,
                LogDirection::Outbound,
                "whatsapp.send.queued",
                LogResult::Success,
                trace,
            )
            .starts_trace(record.requested_at)
            .card_id(record.card_id.clone())
            .external_id(record.send_id.clone())
            .payload(envelope.payload.clone())
            .external_message(format!("queued by operator key {:?}", key.name));
            self.log.write(entry).await;
        }
        Ok((
            status,
            json!({ "duplicate": status == 200, "send": record, "delivery": Value::Null }),
        ))
    }

    /// `GET /v1/whatsapp/messages/<send id>`.
    pub(super) async fn whatsapp_send(
        &self,
        key: &OperatorKey,
        send_id: &str,
    ) -> Result<Option<Value>, PortError> {
        match self.send.sends.send_record(&key.tenant_id, send_id).await? {
            Some(record) => Ok(Some(send_view(self, key, &record).await?)),
            None => Ok(None),
        }
    }

    /// `GET /v1/whatsapp/link?card_id=…&text=…`: a click-to-chat link per phone of the card.
    pub(super) async fn whatsapp_link(
        &self,
        key: &OperatorKey,
        query: &HashMap<String, String>,
    ) -> Result<Option<Value>, PortError> {
        let card_id = query.get("card_id").map(|c| c.trim()).unwrap_or_default();
        let Some(card) = self.crm.card(&key.tenant_id, card_id).await? else {
            return Ok(None);
        };
        let text = query.get("text").map(String::as_str);
        let links: Vec<Value> = card
            .phones
            .iter()
            .map(|p| json!({ "phone": p.as_str(), "link": wa_me_link(p, text) }))
            .collect();
        Ok(Some(json!({ "card_id": card.card_id, "links": links })))
    }
}
