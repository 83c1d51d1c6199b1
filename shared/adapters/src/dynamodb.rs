//! DynamoDB: the CRM single table (tenants, routes, cards, identities, timelines, notes, tasks,
//! message statuses, idempotency keys) and the integration-log table.
//!
//! Keys (`T#<tenant>#...` everywhere a record belongs to a tenant):
//! | item               | pk                                   | sk                          | gsi1 (pk / sk)                              |
//! |--------------------|--------------------------------------|-----------------------------|---------------------------------------------|
//! | tenant config      | `TENANT#<t>`                         | `CONFIG`                    |                                             |
//! | tenant route       | `ROUTE#<route key>`                  | `ROUTE`                     |                                             |
//! | identity key       | `T#<t>#ID#<PHONE#+90..|EMAIL#..|TAX#..|EXT#sys#id>` | `ID`         |                                             |
//! | card               | `T#<t>#CARD#<card>`                  | `PROFILE`                   | leads: `T#<t>#LEADS#<source>` / `<created>#<card>` |
//! | timeline entry     | `T#<t>#CARD#<card>`                  | `TL#<occurred>#<entry>`     |                                             |
//! | note               | `T#<t>#CARD#<card>`                  | `NOTE#<created>#<note>`     |                                             |
//! | task               | `T#<t>#CARD#<card>`                  | `TASK#<task>`               | `T#<t>#TASKS#<owner>` / `<due>#<task>`       |
//! | outbound message   | `T#<t>#WAMSG#<wamid>`                | `WAMSG`                     |                                             |
//! | idempotency key    | `T#<t>#IDEM#<scope>#<key>`           | `IDEM`  (TTL `expires_at`)  |                                             |
//! Log table: pk `T#<t>#LOG#<integration>`, sk `<occurred>#<log id>`; gsi1 `T#<t>#TRACE#<trace>`;
//! gsi2 (errors only) `T#<t>#ERR#<code>`; TTL `expires_at`.
//! Room left for the roadmap: call queue on gsi2 (`T#<t>#CALLQ#<agent>`), counters
//! (`T#<t>#COUNTER#<name>`), job checkpoints (`T#<t>#JOB#<job>`), more identity kinds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::log::{Integration, LogRecord};
use onecrm_domain::party::{Card, CardKind, CardRef, IdentityKey, LeadSource, Note};
use onecrm_domain::ports::*;
use onecrm_domain::task::Task;
use onecrm_domain::tenant::{TenantConfig, TenantId, TenantRoute};
use onecrm_domain::time::to_sortable;
use onecrm_domain::timeline::TimelineEntry;
use onecrm_domain::whatsapp::status::{DeliveryStatus, MessageStatusUpdate, OutboundMessage};
use serde::de::DeserializeOwned;
use serde::Serialize;

type Item = HashMap<String, AttributeValue>;

/// Tenant settings change rarely; webhooks must answer fast. Unknown routes are cached
/// briefly so a newly added tenant starts working within seconds.
const TENANT_CACHE_TTL: Duration = Duration::from_secs(60);
const UNKNOWN_ROUTE_CACHE_TTL: Duration = Duration::from_secs(10);

pub mod keys {
    use super::*;

    pub fn tenant_config(t: &TenantId) -> String {
        format!("TENANT#{t}")
    }
    pub fn route(r: &TenantRoute) -> String {
        format!("ROUTE#{}", r.key())
    }
    pub fn identity(t: &TenantId, k: &IdentityKey) -> String {
        format!("T#{t}#ID#{}", k.key())
    }
    pub fn card(t: &TenantId, card_id: &str) -> String {
        format!("T#{t}#CARD#{card_id}")
    }
    pub fn leads(t: &TenantId, source: LeadSource) -> String {
        format!("T#{t}#LEADS#{}", source.as_str())
    }
    pub fn tasks(t: &TenantId, owner: &str) -> String {
        format!("T#{t}#TASKS#{owner}")
    }
    pub fn wa_message(t: &TenantId, wamid: &str) -> String {
        format!("T#{t}#WAMSG#{wamid}")
    }
    pub fn idempotency(t: &TenantId, k: &IdempotencyKey) -> String {
        format!("T#{t}#IDEM#{}#{}", k.scope, k.key)
    }
    pub fn log(t: &TenantId, integration: Integration) -> String {
        format!("T#{t}#LOG#{}", integration.as_str())
    }
    pub fn trace(t: &TenantId, trace: &str) -> String {
        format!("T#{t}#TRACE#{trace}")
    }
    pub fn error_code(t: &TenantId, code: &str) -> String {
        format!("T#{t}#ERR#{code}")
    }
}

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
fn cancellation_codes(
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

/// Why a transaction did not apply.
enum TransactFailure {
    /// Cancelled: one reason code per action, in order (`None`, `ConditionalCheckFailed`...).
    Cancelled(Vec<String>),
    Port(PortError),
}

fn condition_failed(codes: &[String], index: usize) -> bool {
    codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed")
}

struct Cached<T> {
    at: Instant,
    value: T,
}

#[derive(Default)]
struct TenantCache {
    routes: Mutex<HashMap<String, Cached<Option<TenantId>>>>,
    configs: Mutex<HashMap<TenantId, Cached<TenantConfig>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The CRM table: implements [`TenantDirectory`] and [`CrmRepository`].
pub struct CrmStore {
    client: Client,
    table: String,
    cache: TenantCache,
}

impl CrmStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            cache: TenantCache::default(),
        }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, PortError> {
        self.put_with(item, condition, None)
    }

    fn put_with(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Option<Item>,
    ) -> Result<TransactWriteItem, PortError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_values(values)
            .build()
            .map_err(|e| PortError::Rejected(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(match cancellation_codes(&e) {
                Some(codes) => TransactFailure::Cancelled(codes),
                None => TransactFailure::Port(port_error("TransactWriteItems", e)),
            }),
        }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out.item)
    }

    async fn query_prefix(
        &self,
        pk: String,
        sk_prefix: &str,
        newest_first: bool,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, PortError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(sk_prefix))
                .scan_index_forward(!newest_first)
                .set_limit(limit.map(|l| l.min(1000) as i32))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|l| items.len() >= l) {
                break;
            }
        }
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }

    fn idempotency_item(&self, tenant: &TenantId, key: &IdempotencyKey) -> Item {
        HashMap::from([
            ("pk".to_string(), s(keys::idempotency(tenant, key))),
            ("sk".to_string(), s("IDEM")),
            ("entity".to_string(), s("idempotency")),
            ("scope".to_string(), s(key.scope.clone())),
            ("expires_at".to_string(), n(key.expires_at.timestamp())),
        ])
    }

    fn card_item(&self, tenant: &TenantId, card: &Card) -> Result<Item, PortError> {
        let mut keys = vec![
            ("pk", keys::card(tenant, &card.card_id)),
            ("sk", "PROFILE".to_string()),
        ];
        if let Some(lead) = &card.lead {
            keys.push(("gsi1pk", keys::leads(tenant, lead.source)));
            keys.push((
                "gsi1sk",
                format!("{}#{}", to_sortable(&card.created_at), card.card_id),
            ));
        }
        let mut item = item(card, "card", &keys)?;
        if let Some(lead) = &card.lead {
            // A number, so "is this touch newer?" is a plain condition (see record_interaction).
            item.insert(
                "last_touch_ms".into(),
                n(lead.last_touch.at.timestamp_millis()),
            );
        }
        Ok(item)
    }

    fn identity_item(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
        card: &CardRef,
    ) -> Result<Item, PortError> {
        item(
            card,
            "identity",
            &[
                ("pk", keys::identity(tenant, key)),
                ("sk", "ID".to_string()),
            ],
        )
    }

    fn timeline_item(&self, tenant: &TenantId, entry: &TimelineEntry) -> Result<Item, PortError> {
        item(
            entry,
            "timeline",
            &[
                ("pk", keys::card(tenant, &entry.card_id)),
                (
                    "sk",
                    format!("TL#{}#{}", to_sortable(&entry.occurred_at), entry.entry_id),
                ),
            ],
        )
    }

    /// Adds a tenant with its routing keys (tenant onboarding; see `onecrm-admin`).
    pub async fn put_tenant(
        &self,
        config: &TenantConfig,
        routes: &[TenantRoute],
    ) -> Result<(), PortError> {
        let mut writes = vec![self.put(
            item(
                config,
                "tenant",
                &[
                    ("pk", keys::tenant_config(&config.tenant_id)),
                    ("sk", "CONFIG".into()),
                ],
            )?,
            None,
        )?];
        for route in routes {
            let mut route_item =
                HashMap::from([("tenant_id".to_string(), s(config.tenant_id.as_str()))]);
            route_item.insert("pk".into(), s(keys::route(route)));
            route_item.insert("sk".into(), s("ROUTE"));
            route_item.insert("entity".into(), s("route"));
            // A route may be re-pointed only by the tenant that owns it.
            let values = HashMap::from([(":tenant".to_string(), s(config.tenant_id.as_str()))]);
            writes.push(self.put_with(
                route_item,
                Some("attribute_not_exists(pk) OR tenant_id = :tenant"),
                Some(values),
            )?);
        }
        self.transact(writes)
            .await
            .map_err(|failure| match failure {
                TransactFailure::Cancelled(codes)
                    if codes.iter().any(|c| c == "ConditionalCheckFailed") =>
                {
                    PortError::Rejected("a route already belongs to another tenant".into())
                }
                TransactFailure::Cancelled(codes) => {
                    PortError::Unavailable(format!("transaction cancelled: {codes:?}"))
                }
                TransactFailure::Port(e) => e,
            })?;
        lock(&self.cache.routes).clear();
        lock(&self.cache.configs).remove(&config.tenant_id);
        Ok(())
    }
}

#[async_trait]
impl TenantDirectory for CrmStore {
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantConfig>, PortError> {
        if let Some(hit) = lock(&self.cache.configs)
            .get(id)
            .filter(|c| c.at.elapsed() < TENANT_CACHE_TTL)
        {
            return Ok(Some(hit.value.clone()));
        }
        let Some(found) = self.get(keys::tenant_config(id), "CONFIG").await? else {
            return Ok(None);
        };
        let config: TenantConfig = from_item(found)?;
        lock(&self.cache.configs).insert(
            id.clone(),
            Cached {
                at: Instant::now(),
                value: config.clone(),
            },
        );
        Ok(Some(config))
    }

    async fn resolve(&self, route: &TenantRoute) -> Result<Option<TenantId>, PortError> {
        let key = route.key();
        if let Some(hit) = lock(&self.cache.routes).get(&key) {
            let ttl = if hit.value.is_some() {
                TENANT_CACHE_TTL
            } else {
                UNKNOWN_ROUTE_CACHE_TTL
            };
            if hit.at.elapsed() < ttl {
                return Ok(hit.value.clone());
            }
        }
        let tenant = match self.get(keys::route(route), "ROUTE").await? {
            Some(found) => match found.get("tenant_id") {
                Some(AttributeValue::S(t)) => {
                    Some(TenantId::parse(t).map_err(PortError::Rejected)?)
                }
                _ => return Err(PortError::Rejected(format!("route {key} has no tenant_id"))),
            },
            None => None,
        };
        lock(&self.cache.routes).insert(
            key,
            Cached {
                at: Instant::now(),
                value: tenant.clone(),
            },
        );
        Ok(tenant)
    }
}

#[async_trait]
impl CrmRepository for CrmStore {
    async fn find_card(
        &self,
        tenant: &TenantId,
        key: &IdentityKey,
    ) -> Result<Option<CardRef>, PortError> {
        self.get(keys::identity(tenant, key), "ID")
            .await?
            .map(from_item)
            .transpose()
    }

    /// Idempotency key + timeline entry + the card's activity, in one transaction. A lead's
    /// last touch only moves forward: when the message is older than the recorded touch, the
    /// touch condition cancels the first attempt and the entry is recorded without it.
    async fn record_interaction(
        &self,
        tenant: &TenantId,
        write: &CardInteraction,
    ) -> Result<WriteOutcome, PortError> {
        let card_pk = s(keys::card(tenant, &write.card.card_id));
        let built = |e: aws_sdk_dynamodb::error::BuildError| PortError::Rejected(e.to_string());
        let mut touch = Update::builder()
            .table_name(&self.table)
            .key("pk", card_pk.clone())
            .key("sk", s("PROFILE"))
            .expression_attribute_values(":now", s(to_sortable(&write.entry.occurred_at)));
        touch = if write.card.kind == CardKind::Lead {
            let value = serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(&write.touch)
                .map_err(|e| PortError::Rejected(e.to_string()))?;
            // `lead` is a DynamoDB reserved word.
            touch
                .update_expression("SET updated_at = :now, #lead.last_touch = :touch, last_touch_ms = :ms")
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(last_touch_ms) OR last_touch_ms <= :ms)")
                .expression_attribute_names("#lead", "lead")
                .expression_attribute_values(":touch", value)
                .expression_attribute_values(":ms", n(write.touch.at.timestamp_millis()))
        } else {
            touch
                .update_expression("SET updated_at = :now")
                .condition_expression("attribute_exists(pk)")
        };
        let card_exists = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", card_pk)
            .key("sk", s("PROFILE"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(built)?;
        let mut card_action = TransactWriteItem::builder()
            .update(touch.build().map_err(built)?)
            .build();
        let mut fallback = (write.card.kind == CardKind::Lead).then(|| {
            TransactWriteItem::builder()
                .condition_check(card_exists)
                .build()
        });
        loop {
            let writes = vec![
                self.put(
                    self.idempotency_item(tenant, &write.idempotency),
                    Some("attribute_not_exists(pk)"),
                )?,
                self.put(self.timeline_item(tenant, &write.entry)?, None)?,
                card_action,
            ];
            return match self.transact(writes).await {
                Ok(()) => Ok(WriteOutcome::Applied),
                Err(TransactFailure::Cancelled(codes)) if condition_failed(&codes, 0) => {
                    Ok(WriteOutcome::Duplicate)
                }
                Err(TransactFailure::Cancelled(codes)) if condition_failed(&codes, 2) => {
                    match fallback.take() {
                        // Older than the lead's last touch (or the card is gone): once more without the touch.
                        Some(check) => {
                            card_action = check;
                            continue;
                        }
                        None => Err(PortError::Unavailable(format!(
                            "card {} vanished while recording",
                            write.card.card_id
                        ))),
                    }
                }
                Err(TransactFailure::Cancelled(codes)) => Err(PortError::Unavailable(format!(
                    "transaction cancelled: {codes:?}"
                ))),
                Err(TransactFailure::Port(e)) => Err(e),
            };
        }
    }

    async fn create_lead(
        &self,
        tenant: &TenantId,
        write: &NewLead,
    ) -> Result<NewLeadOutcome, PortError> {
        let card_ref = write.card.as_ref();
        let mut writes = vec![self.put(
            self.idempotency_item(tenant, &write.idempotency),
            Some("attribute_not_exists(pk)"),
        )?];
        for key in &write.identities {
            writes.push(self.put(
                self.identity_item(tenant, key, &card_ref)?,
                Some("attribute_not_exists(pk)"),
            )?);
        }
        writes.push(self.put(
            self.card_item(tenant, &write.card)?,
            Some("attribute_not_exists(pk)"),
        )?);
        writes.push(self.put(self.timeline_item(tenant, &write.entry)?, None)?);
        if let Some(note) = &write.note {
            writes.push(self.put(note_item(tenant, note)?, None)?);
        }
        if let Some(task) = &write.task {
            writes.push(self.put(task_item(tenant, task)?, None)?);
        }
        match self.transact(writes).await {
            Ok(()) => Ok(NewLeadOutcome::Created),
            Err(TransactFailure::Cancelled(codes)) if condition_failed(&codes, 0) => {
                Ok(NewLeadOutcome::Duplicate)
            }
            // Actions 1..=n are the identity keys.
            Err(TransactFailure::Cancelled(codes))
                if (1..=write.identities.len()).any(|i| condition_failed(&codes, i)) =>
            {
                Ok(NewLeadOutcome::IdentityTaken)
            }
            Err(TransactFailure::Cancelled(codes)) => Err(PortError::Unavailable(format!(
                "transaction cancelled: {codes:?}"
            ))),
            Err(TransactFailure::Port(e)) => Err(e),
        }
    }

    async fn create_card(
        &self,
        tenant: &TenantId,
        card: &Card,
    ) -> Result<NewLeadOutcome, PortError> {
        let card_ref = card.as_ref();
        let mut writes = Vec::new();
        for key in card.identity_keys() {
            writes.push(self.put(
                self.identity_item(tenant, &key, &card_ref)?,
                Some("attribute_not_exists(pk)"),
            )?);
        }
        writes.push(self.put(
            self.card_item(tenant, card)?,
            Some("attribute_not_exists(pk)"),
        )?);
        match self.transact(writes).await {
            Ok(()) => Ok(NewLeadOutcome::Created),
            Err(TransactFailure::Cancelled(codes))
                if codes.iter().any(|c| c == "ConditionalCheckFailed") =>
            {
                Ok(NewLeadOutcome::IdentityTaken)
            }
            Err(TransactFailure::Cancelled(codes)) => Err(PortError::Unavailable(format!(
                "transaction cancelled: {codes:?}"
            ))),
            Err(TransactFailure::Port(e)) => Err(e),
        }
    }

    /// One conditional update: the status moves only up its ladder (see
    /// [`DeliveryStatus::rank`]); an equal or lower rank fails the condition and changes nothing.
    async fn apply_message_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        let at = to_sortable(&update.at);
        let mut expression = vec![
            "entity = :entity",
            "wamid = :wamid",
            "#status = :status",
            "status_rank = :rank",
            "status_at = :at",
            "recipient = if_not_exists(recipient, :recipient)",
        ];
        let stamp = match update.status {
            DeliveryStatus::Sent => Some("sent_at = :at"),
            DeliveryStatus::Delivered => Some("delivered_at = :at"),
            DeliveryStatus::Read | DeliveryStatus::Played => {
                Some("read_at = if_not_exists(read_at, :at)")
            }
            DeliveryStatus::Failed => Some("failed_at = :at"),
            DeliveryStatus::Other(_) => None,
        };
        expression.extend(stamp);
        let error = update
            .errors
            .first()
            .filter(|_| update.status == DeliveryStatus::Failed);
        if error.is_some() {
            expression.extend([
                "error_code = :code",
                "error_title = :title",
                "error_details = :details",
            ]);
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::wa_message(tenant, &update.wamid)))
            .key("sk", s("WAMSG"))
            .update_expression(format!("SET {}", expression.join(", ")))
            .condition_expression("attribute_not_exists(status_rank) OR status_rank < :rank")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":entity", s("wa_message"))
            .expression_attribute_values(":wamid", s(update.wamid.clone()))
            .expression_attribute_values(":status", s(update.status.as_str()))
            .expression_attribute_values(":rank", n(update.status.rank()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(
                ":recipient",
                update
                    .recipient
                    .clone()
                    .map(s)
                    .unwrap_or(AttributeValue::Null(true)),
            );
        if let Some(error) = error {
            request = request
                .expression_attribute_values(":code", n(error.code))
                .expression_attribute_values(
                    ":title",
                    error
                        .title
                        .clone()
                        .map(s)
                        .unwrap_or(AttributeValue::Null(true)),
                )
                .expression_attribute_values(
                    ":details",
                    error
                        .details
                        .clone()
                        .map(s)
                        .unwrap_or(AttributeValue::Null(true)),
                );
        }
        match request.send().await {
            Ok(_) => Ok(StatusOutcome::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(StatusOutcome::Stale)
            }
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn card(&self, tenant: &TenantId, card_id: &str) -> Result<Option<Card>, PortError> {
        self.get(keys::card(tenant, card_id), "PROFILE")
            .await?
            .map(from_item)
            .transpose()
    }

    async fn timeline(
        &self,
        tenant: &TenantId,
        card_id: &str,
        limit: usize,
    ) -> Result<Vec<TimelineEntry>, PortError> {
        self.query_prefix(keys::card(tenant, card_id), "TL#", true, Some(limit))
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn notes(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Note>, PortError> {
        self.query_prefix(keys::card(tenant, card_id), "NOTE#", false, None)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn tasks(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Task>, PortError> {
        self.query_prefix(keys::card(tenant, card_id), "TASK#", false, None)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn leads_by_source(
        &self,
        tenant: &TenantId,
        source: LeadSource,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Card>, PortError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(keys::leads(tenant, source)))
            .expression_attribute_values(":from", s(to_sortable(&from)))
            // '#' sorts before any id character, so this excludes leads created exactly at `to`.
            .expression_attribute_values(":to", s(format!("{}#", to_sortable(&to))))
            .scan_index_forward(false)
            .send()
            .await
            .map_err(|e| port_error("Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn outbound_message(
        &self,
        tenant: &TenantId,
        wamid: &str,
    ) -> Result<Option<OutboundMessage>, PortError> {
        self.get(keys::wa_message(tenant, wamid), "WAMSG")
            .await?
            .map(from_item)
            .transpose()
    }
}

fn note_item(tenant: &TenantId, note: &Note) -> Result<Item, PortError> {
    item(
        note,
        "note",
        &[
            ("pk", keys::card(tenant, &note.card_id)),
            (
                "sk",
                format!("NOTE#{}#{}", to_sortable(&note.created_at), note.note_id),
            ),
        ],
    )
}

fn task_item(tenant: &TenantId, task: &Task) -> Result<Item, PortError> {
    item(
        task,
        "task",
        &[
            ("pk", keys::card(tenant, &task.card_id)),
            ("sk", format!("TASK#{}", task.task_id)),
            ("gsi1pk", keys::tasks(tenant, &task.owner)),
            (
                "gsi1sk",
                format!("{}#{}", to_sortable(&task.due_at), task.task_id),
            ),
        ],
    )
}

/// The integration-log table: implements [`LogSink`] and [`LogReader`].
pub struct LogStore {
    client: Client,
    table: String,
}

impl LogStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn query(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
        limit: usize,
    ) -> Result<Vec<LogRecord>, PortError> {
        let sk_name = pk_name.replace("pk", "sk");
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32);
        request = match range {
            Some((from, to)) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":from", s(to_sortable(&from)))
                .expression_attribute_values(":to", s(format!("{}#", to_sortable(&to)))),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let out = request.send().await.map_err(|e| port_error("Query", e))?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(log_record_from_item)
            .collect()
    }
}

/// Payloads are stored as one JSON string: any depth, no empty-set or number-precision surprises.
fn log_record_from_item(mut item: Item) -> Result<LogRecord, PortError> {
    if let Some(AttributeValue::S(json)) = item.remove("payload") {
        let value: serde_json::Value =
            serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json));
        item.insert(
            "payload".into(),
            serde_dynamo::aws_sdk_dynamodb_1::to_attribute_value(value)
                .map_err(|e| PortError::Rejected(e.to_string()))?,
        );
    }
    from_item(item)
}

#[async_trait]
impl LogSink for LogStore {
    async fn put(&self, record: &LogRecord) -> Result<(), PortError> {
        let sort = format!("{}#{}", to_sortable(&record.occurred_at), record.log_id);
        let mut keys = vec![
            ("pk", keys::log(&record.tenant_id, record.integration)),
            ("sk", sort.clone()),
            (
                "gsi1pk",
                keys::trace(&record.tenant_id, record.trace_id.as_str()),
            ),
            ("gsi1sk", sort.clone()),
        ];
        if let Some(code) = &record.error_code {
            keys.push(("gsi2pk", keys::error_code(&record.tenant_id, code)));
            keys.push(("gsi2sk", sort));
        }
        let mut row = item(record, "log", &keys)?;
        if let Some(payload) = &record.payload {
            row.insert("payload".into(), s(payload.to_string()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(row))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl LogReader for LogStore {
    async fn by_integration(
        &self,
        tenant: &TenantId,
        integration: Integration,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LogRecord>, PortError> {
        self.query(
            None,
            "pk",
            keys::log(tenant, integration),
            Some((from, to)),
            limit,
        )
        .await
    }

    async fn by_trace(
        &self,
        tenant: &TenantId,
        trace_id: &str,
    ) -> Result<Vec<LogRecord>, PortError> {
        self.query(
            Some("gsi1"),
            "gsi1pk",
            keys::trace(tenant, trace_id),
            None,
            1000,
        )
        .await
    }

    async fn by_error_code(
        &self,
        tenant: &TenantId,
        code: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LogRecord>, PortError> {
        self.query(
            Some("gsi2"),
            "gsi2pk",
            keys::error_code(tenant, code),
            Some((from, to)),
            limit,
        )
        .await
    }
}
