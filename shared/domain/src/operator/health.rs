//! Health per integration for the operator's page: the last success and the last error, the
//! error rate over 24 hours, and what waits for a person (dead letters, parked and unparsed
//! events), all of the key's tenant.

use chrono::Duration;
use serde_json::{json, Value};

use super::api::OperatorApi;
use super::keys::OperatorKey;
use super::replay::MAX_LOOKED_AT;
use crate::error::PortError;
use crate::log::{Integration, LogDirection, LogRecord, LogResult};
use crate::page::{Page, PageRequest};

/// Log records of a day read per integration; past it the rate is a sample of the newest.
const SAMPLE: usize = 2000;
/// Held events counted per kind (the page says "at least" past it).
const HELD: usize = 100;

impl OperatorApi {
    pub(super) async fn health(&self, key: &OperatorKey) -> Result<Value, PortError> {
        let tenant = &key.tenant_id;
        let now = self.log.clock().now();
        // The log code of a partner refusing our token.
        let unauthorized = PortError::Unauthorized(String::new()).code();
        let mut integrations = Vec::new();
        for integration in Integration::ALL
            .into_iter()
            .filter(|i| *i != Integration::CrmApi)
        {
            let mut records: Vec<LogRecord> = Vec::new();
            let mut page = PageRequest::first(500);
            let mut sampled = false;
            loop {
                let found = self
                    .logs
                    .by_integration(
                        tenant,
                        integration,
                        now - Duration::hours(24),
                        now + Duration::seconds(1),
                        page,
                    )
                    .await?;
                records.extend(found.items);
                match found.next {
                    Some(next) if records.len() < SAMPLE => page = PageRequest::after(500, next),
                    Some(_) => {
                        sampled = true;
                        break;
                    }
                    None => break,
                }
            }
            let errors = records
                .iter()
                .filter(|r| r.result == LogResult::Error)
                .count();
            let last_success = records
                .iter()
                .find(|r| r.result == LogResult::Success)
                .map(|r| r.occurred_at);
            let last_error = records.iter().find(|r| r.result == LogResult::Error).map(|r| {
                json!({ "at": r.occurred_at, "code": r.error_code, "message": r.error_message, "trace_id": r.trace_id })
            });
            // The partner tells us about our token only by accepting or refusing it: the
            // newest outbound call that did either says whether it is valid now.
            let token = records
                .iter()
                .filter(|r| r.direction == LogDirection::Outbound)
                .find(|r| {
                    r.result == LogResult::Success || r.error_code.as_deref() == Some(unauthorized)
                })
                .map(|r| {
                    json!({
                        "valid": r.result == LogResult::Success,
                        "checked_at": r.occurred_at,
                        "message": r.error_message,
                        "trace_id": r.trace_id,
                    })
                });
            let dead_letters = match self.dead_letters.take(integration, MAX_LOOKED_AT).await {
                Ok(letters) => {
                    self.dead_letters.give_back(integration, &letters).await?;
                    let ours = letters
                        .iter()
                        .filter(|l| l.envelope.as_ref().is_some_and(|e| &e.tenant_id == tenant))
                        .count();
                    Some(ours)
                }
                // No queue of its own (a synchronous route such as the PBX's).
                Err(PortError::Rejected(_)) => None,
                Err(e) => return Err(e),
            };
            let held = |page: Page<_>| page.items.len();
            let parked = held(
                self.archive
                    .parked(tenant, integration, PageRequest::first(HELD))
                    .await?,
            );
            let unparsed = held(
                self.archive
                    .unparsed(tenant, integration, PageRequest::first(HELD))
                    .await?,
            );
            if records.is_empty() && dead_letters.unwrap_or(0) == 0 && parked == 0 && unparsed == 0
            {
                continue;
            }
            integrations.push(json!({
                "integration": integration.as_str(),
                "records_24h": records.len(),
                "errors_24h": errors,
                "error_rate_24h": if records.is_empty() { 0.0 } else { errors as f64 / records.len() as f64 },
                "sampled": sampled,
                "last_success": last_success,
                "last_error": last_error,
                "token": token,
                "dead_letters": dead_letters,
                "parked": parked,
                "unparsed": unparsed,
            }));
        }
        Ok(json!({ "checked_at": now, "integrations": integrations }))
    }
}
