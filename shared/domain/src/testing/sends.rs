//! Outbound WhatsApp in memory: send records with the DynamoDB adapter's conditions, and a
//! sender that answers from a script.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use super::lock;
use crate::envelope::TraceId;
use crate::error::PortError;
use crate::tenant::TenantId;
use crate::whatsapp::outbound::{Accepted, MessageSender, SendFailure, SendStore};
use crate::whatsapp::send::{SendRecord, SendState};

#[derive(Default)]
pub struct MemorySends {
    records: Mutex<HashMap<(TenantId, String), SendRecord>>,
}

impl MemorySends {
    pub fn get(&self, tenant: &TenantId, send_id: &str) -> Option<SendRecord> {
        lock(&self.records)
            .get(&(tenant.clone(), send_id.to_string()))
            .cloned()
    }
}

#[async_trait]
impl SendStore for MemorySends {
    async fn create_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Option<SendRecord>, PortError> {
        let mut records = lock(&self.records);
        let key = (tenant.clone(), record.send_id.clone());
        if let Some(existing) = records.get(&key) {
            return Ok(Some(existing.clone()));
        }
        records.insert(key, record.clone());
        Ok(None)
    }

    async fn send_record(
        &self,
        tenant: &TenantId,
        send_id: &str,
    ) -> Result<Option<SendRecord>, PortError> {
        Ok(self.get(tenant, send_id))
    }

    async fn claim_send(
        &self,
        tenant: &TenantId,
        record: &SendRecord,
    ) -> Result<Result<SendRecord, SendRecord>, PortError> {
        let mut records = lock(&self.records);
        let key = (tenant.clone(), record.send_id.clone());
        let attempts = match records.get(&key) {
            Some(current) if !matches!(current.state, SendState::Queued | SendState::Waiting) => {
                return Ok(Err(current.clone()))
            }
            Some(current) => current.attempts,
            None => 0,
        };
        let claimed = SendRecord {
            state: SendState::Sending,
            attempts: attempts + 1,
            ..record.clone()
        };
        records.insert(key, claimed.clone());
        Ok(Ok(claimed))
    }

    async fn ensure_entry(&self, _: &TenantId, _: &SendRecord) -> Result<(), PortError> {
        Ok(())
    }

    async fn finish_send(&self, tenant: &TenantId, record: &SendRecord) -> Result<(), PortError> {
        let mut records = lock(&self.records);
        let key = (tenant.clone(), record.send_id.clone());
        match records.get(&key) {
            Some(current) if current.state == SendState::Sending => {
                records.insert(key, record.clone());
                Ok(())
            }
            _ => Err(PortError::Rejected(format!(
                "send {} is not being sent",
                record.send_id
            ))),
        }
    }
}

/// Answers sends from a script, in order; an empty script accepts with `wamid.<n>`.
#[derive(Default)]
pub struct ScriptedSender {
    pub script: Mutex<VecDeque<Result<Accepted, SendFailure>>>,
    /// Bodies sent, with the phone number id.
    pub sent: Mutex<Vec<(String, Value)>>,
}

impl ScriptedSender {
    pub fn then(&self, answer: Result<Accepted, SendFailure>) {
        lock(&self.script).push_back(answer);
    }

    pub fn calls(&self) -> usize {
        lock(&self.sent).len()
    }
}

#[async_trait]
impl MessageSender for ScriptedSender {
    async fn send(
        &self,
        _tenant: &TenantId,
        phone_number_id: &str,
        body: &Value,
        _send_id: &str,
        _trace: &TraceId,
    ) -> Result<Accepted, SendFailure> {
        let n = {
            let mut sent = lock(&self.sent);
            sent.push((phone_number_id.to_string(), body.clone()));
            sent.len()
        };
        lock(&self.script).pop_front().unwrap_or_else(|| {
            Ok(Accepted {
                wamid: format!("wamid.{n}"),
                message_status: Some("accepted".into()),
            })
        })
    }
}
