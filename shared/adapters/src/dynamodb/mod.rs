//! DynamoDB: the CRM single table (tenants, routes, cards, identities, timelines, notes, tasks,
//! message statuses, idempotency keys) and the integration-log table.
//!
//! Keys (`T#<tenant>#...` everywhere a record belongs to a tenant):
//! | item               | pk                                   | sk                          | gsi1 (pk / sk)                              |
//! |--------------------|--------------------------------------|-----------------------------|---------------------------------------------|
//! | tenant config      | `TENANT#<t>`                         | `CONFIG`                    |                                             |
//! | tenant route       | `ROUTE#<route key>`                  | `ROUTE`                     |                                             |
//! | identity → card    | `T#<t>#ID#<PHONE#+90..|EMAIL#..|TAX#..|EXT#sys#id>` | `CARD#<card>` (one per card) |                      |
//! | identity claim     | `T#<t>#ID#<key>`                     | `CLAIM` (new lead; tax/partner id) |                                      |
//! | possible duplicate | `T#<t>#CARD#<card>`                  | `DUP#<other card>`          |                                             |
//! | card               | `T#<t>#CARD#<card>`                  | `PROFILE`                   | leads: `T#<t>#LEADS#<source>` / `<created>#<card>` |
//! | timeline entry     | `T#<t>#CARD#<card>`                  | `TL#<occurred>#<entry>`     |                                             |
//! | conversation entry | `T#<t>#CONV#<PHONE#+90..|EMAIL#..>`  | `TL#<occurred>#<entry>` (its own dedupe; `card_id` attribute) |       |
//! | note               | `T#<t>#CARD#<card>`                  | `NOTE#<created>#<note>`     |                                             |
//! | task               | `T#<t>#CARD#<card>`                  | `TASK#<task>`               | `T#<t>#TASKS#<owner>` / `<due>#<task>`       |
//! | outbound message   | `T#<t>#WAMSG#<wamid>`                | `WAMSG`                     |                                             |
//! | outbound send      | `T#<t>#WASEND#<send id>`             | `WASEND` (state, attempts, wamid once sent) |                             |
//! | idempotency key    | `T#<t>#IDEM#<scope>#<key>`           | `IDEM`  (TTL `expires_at`)  |                                             |
//! | form rate counter  | `T#<t>#RATE#<key hash>`              | `<unix minute>` (TTL)       |                                             |
//! | form Idempotency-Key | `T#<t>#WFKEY#<sha256 of the key>`  | `WFKEY` (trace id; TTL 24 h) |                                            |
//! Log table: pk `T#<t>#LOG#<integration>`, sk `<trace start>#<trace>#<occurred>#<log id>` (a
//! trace's records side by side); gsi1 `T#<t>#TRACE#<trace>` (keys only; a trace's opening record
//! and errors); gsi2 (errors only) `T#<t>#ERR#<code>`; both indexes sort by `sk`; TTL `expires_at`.
//! Call events, the call queue (gsi1 per agent, gsi2 per tenant), quotes, tickets and their
//! counters: see `calls.rs`. The Logo sync's run, reports, invoices and products: `logo.rs`; the Express poll's members, campaigns and segments: `express.rs`; nightly runs: `runs.rs`. Room left for the roadmap: job checkpoints (`T#<t>#JOB#<job>`),
//! more identity kinds.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use onecrm_domain::error::PortError;
use serde::de::DeserializeOwned;
use serde::Serialize;

mod archive;
pub mod batch;
mod calls;
mod crm;
mod cursor;
mod express;
mod guard;
mod identity;
mod karel;
pub mod keys;
mod log;
mod logo;
mod messages;
mod operator;
mod policies;
mod runs;
mod sends;
mod tenants;
pub mod tx;

pub use archive::ArchiveStore;
pub use crm::CrmStore;
pub use guard::FormGuardStore;
pub use log::LogStore;
pub use operator::OperatorStore;

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Serializes `value` and adds the item's keys and entity type.
fn item<T: Serialize>(value: &T, entity: &str, keys: &[(&str, String)]) -> Result<Item, PortError> {
    let mut item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(value)
        .map_err(|e| PortError::Rejected(format!("cannot store {entity}: {e}")))?;
    for (name, value) in keys {
        item.insert((*name).to_string(), s(value.clone()));
    }
    item.insert("entity".into(), s(entity));
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, PortError> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item(item)
        .map_err(|e| PortError::Rejected(format!("stored item does not match its type: {e}")))
}

/// Throttling, conflicts, timeouts and 5xx are worth a retry; access problems are not.
/// Sends a conditional put: `false` when its condition failed and nothing was written.
pub async fn put_if(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
) -> Result<bool, PortError> {
    match put.send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(port_error("PutItem", e)),
    }
}

pub fn port_error<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    operation: &str,
    error: SdkError<E, R>,
) -> PortError {
    let message = format!("{operation}: {}", error_text(&error));
    match &error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable(message)
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionConflictException"
                | "TransactionInProgressException"
                | "InternalFailure"
                | "InternalServiceError",
            ) => PortError::Unavailable(message),
            Some(
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "ExpiredTokenException"
                | "InvalidSignatureException",
            ) => PortError::Unauthorized(message),
            _ => PortError::Rejected(message),
        },
        _ => PortError::Rejected(message),
    }
}

fn error_text<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    error: &SdkError<E, R>,
) -> String {
    match error {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("unknown"),
            service.err().message().unwrap_or("no message")
        ),
        other => format!("{other:?}").chars().take(300).collect(),
    }
}

/// What a cancelled transaction says about each of its actions.
pub(super) fn cancellation_codes(
    error: &SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Option<Vec<String>> {
    match error {
        SdkError::ServiceError(service) => match service.err() {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(
                cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}
