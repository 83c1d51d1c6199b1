//! The CRM table's cards: identity keys, cards, timelines, notes and tasks.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, CardKind, CardRef, IdentityKey, LeadSource, Note};
use onecrm_domain::ports::*;
use onecrm_domain::task::Task;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;
use onecrm_domain::timeline::TimelineEntry;
use onecrm_domain::whatsapp::status::{MessageStatusUpdate, OutboundMessage};

use super::cursor;
use super::tenants::TenantCache;
use super::*;

/// The CRM table: implements [`TenantDirectory`] and [`CrmRepository`].
pub struct CrmStore {
    pub(super) client: Client,
    pub(super) table: String,
    pub(super) cache: TenantCache,
}

impl CrmStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            cache: TenantCache::default(),
        }
    }

    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, PortError> {
        self.put_with(item, condition, None)
    }

    pub(super) fn put_with(
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

    pub(super) async fn transact(
        &self,
        writes: Vec<TransactWriteItem>,
    ) -> Result<(), TransactFailure> {
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

    pub(super) async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, PortError> {
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

    pub(super) async fn query_prefix(
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

    async fn apply_message_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        self.apply_status(tenant, update).await
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
        page: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        let partition = keys::leads(tenant, source);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(partition.clone()))
            .expression_attribute_values(":from", s(to_sortable(&from)))
            // '#' sorts before any id character, so this excludes leads created exactly at `to`.
            .expression_attribute_values(":to", s(format!("{}#", to_sortable(&to))))
            .scan_index_forward(false);
        let (items, next) = cursor::query_page(query, "gsi1pk", &partition, &page).await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next,
        })
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
