//! The web form's shared state in the CRM table: a per-key, per-minute counter (one atomic
//! conditional `UpdateItem`, so concurrent instances cannot both take the last slot) and
//! Idempotency-Key claims (a conditional `PutItem`, first writer wins). Both expire by TTL.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::tenant::{sha256_hex, TenantId};
use onecrm_domain::web_form::{Claim, Rate, SubmissionGuard};

use super::*;

/// Counters outlive their minute a little (clock skew between instances), then expire.
const COUNTER_TTL_SECONDS: i64 = 300;

pub struct FormGuardStore {
    client: Client,
    table: String,
}

impl FormGuardStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn conditional_failed<E>(
    e: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool
where
    E: ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

#[async_trait]
impl SubmissionGuard for FormGuardStore {
    async fn admit(
        &self,
        tenant: &TenantId,
        key_hash: &str,
        per_minute: u32,
        now: DateTime<Utc>,
    ) -> Result<Rate, PortError> {
        let minute = now.timestamp() / 60;
        let counted = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::form_rate(tenant, key_hash)))
            .key("sk", s(minute.to_string()))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(per_minute))
            .expression_attribute_values(":expires", n(now.timestamp() + COUNTER_TTL_SECONDS))
            .send()
            .await;
        match counted {
            Ok(_) => Ok(Rate::Allowed),
            Err(e) if conditional_failed(&e) => Ok(Rate::Limited {
                retry_after_secs: (60 - now.timestamp().rem_euclid(60)) as u64,
            }),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        idempotency_key: &str,
        claim: &Claim,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Claim>, PortError> {
        let pk = keys::form_idempotency(tenant, &sha256_hex(idempotency_key));
        let claimed = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk.clone()))
            .item("sk", s("WFKEY"))
            .item("entity", s("form_idempotency"))
            .item("trace_id", s(claim.trace_id.clone()))
            .item("fingerprint", s(claim.fingerprint.clone()))
            .item("expires_at", n(expires_at.timestamp()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match claimed {
            Ok(_) => Ok(None),
            Err(e) if conditional_failed(&e) => {
                let first = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .key("sk", s("WFKEY"))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| port_error("GetItem", e))?;
                let item = first.item.unwrap_or_default();
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                Ok(Some(Claim {
                    trace_id: text("trace_id"),
                    fingerprint: text("fingerprint"),
                }))
            }
            Err(e) => Err(port_error("PutItem", e)),
        }
    }

    async fn release(&self, tenant: &TenantId, idempotency_key: &str) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(
                "pk",
                s(keys::form_idempotency(tenant, &sha256_hex(idempotency_key))),
            )
            .key("sk", s("WFKEY"))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e))?;
        Ok(())
    }
}
