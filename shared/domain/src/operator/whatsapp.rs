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

/// A refusal as every route answers it (`HttpReply::error`'s body), with its status.
fn error_body(
    status: u16,
    code: &str,
    message: &str,
    field: Option<&str>,
    trace: &str,
) -> (u16, Value) {
    (status, crate::http::error_body(code, message, field, trace))
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

/// The queue message of a send (the worker reads it as the CRM's own would be).
fn envelope_of(key: &OperatorKey, record: &SendRecord) -> Envelope {
    let payload = SendRequest {
        send_id: Some(record.send_id.clone()),
        card_id: record.card_id.clone(),
        to: Some(record.to.clone()),
        message: record.message.clone(),
        requested_by: Some(record.requested_by.clone()),
    };
    Envelope {
        v: ENVELOPE_VERSION,
        tenant_id: key.tenant_id.clone(),
        integration: Integration::WhatsApp,
        kind: KIND_SEND.to_string(),
        external_id: record.send_id.clone(),
        trace_id: TraceId::new(record.trace_id.clone()),
        received_at: record.requested_at,
        // One customer's messages go in order.
        ordering_key: Some(record.to.clone()),
        replay_of: None,
        payload: serde_json::to_value(&payload).unwrap_or_default(),
    }
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
        // The caller's retry of a send it made is answered from that send, whatever changed
        // since (the window may have closed, the card gone).
        if let Some(id) = &request.send_id {
            if let Some(existing) = self.send.sends.send_record(&key.tenant_id, id).await? {
                return self
                    .repeated(key, &request, existing, queue.as_ref(), t)
                    .await;
            }
        }
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
        if let Some(existing) = self.send.sends.create_send(&key.tenant_id, &record).await? {
            // The same id raced in: one of the two requests made it.
            return self
                .repeated(key, &request, existing, queue.as_ref(), t)
                .await;
        }
        let envelope = envelope_of(key, &record);
        if let Err(e) = queue.enqueue(std::slice::from_ref(&envelope)).await {
            let (status, mut body) = error_body(
                503,
                "unavailable",
                &format!("the send is recorded but could not be queued ({e}); post it again with the same send_id"),
                None,
                t,
            );
            body["error"]["send_id"] = json!(record.send_id);
            return Ok((status, body));
        }
        let entry = LogEntry::new(
            key.tenant_id.clone(),
            Integration::WhatsApp,
            LogDirection::Outbound,
            "whatsapp.send.queued",
            LogResult::Success,
            envelope.trace_id.clone(),
        )
        .starts_trace(record.requested_at)
        .card_id(record.card_id.clone())
        .external_id(record.send_id.clone())
        .external_message(format!("queued by operator key {:?}", key.name));
        self.log.write(entry).await;
        Ok((
            202,
            json!({ "duplicate": false, "send": record, "delivery": Value::Null }),
        ))
    }

    /// A request whose `send_id` exists: 200 with that send (queued again while it is still
    /// queued: its queue message may never have been sent, and the worker's claim keeps it to
    /// one send), or 409 when the id was used for another message.
    async fn repeated(
        &self,
        key: &OperatorKey,
        request: &SendRequest,
        existing: SendRecord,
        queue: &dyn EventQueue,
        t: &str,
    ) -> Result<(u16, Value), PortError> {
        let same_to = match &request.to {
            Some(to) => {
                crate::phone::PhoneNumber::parse(to).is_ok_and(|p| p.as_str() == existing.to)
            }
            None => true,
        };
        if existing.card_id != request.card_id || existing.message != request.message || !same_to {
            return Ok(error_body(
                409,
                "send_id_reused",
                &format!(
                    "send_id {:?} was used for another message; use a new id",
                    existing.send_id
                ),
                Some("send_id"),
                t,
            ));
        }
        if existing.state == SendState::Queued {
            queue.enqueue(&[envelope_of(key, &existing)]).await?;
        }
        let view = send_view(self, key, &existing).await?;
        Ok((
            200,
            json!({ "duplicate": true, "send": view["send"], "delivery": view["delivery"] }),
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
