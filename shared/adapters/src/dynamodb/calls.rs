//! Call events (the call queue), the quotes and tickets keypresses open, and the per-tenant
//! counters that number them.
//!
//! | item        | pk                         | sk                     | gsi1 (agent queue) / gsi2 (tenant queue)              |
//! |-------------|----------------------------|------------------------|-------------------------------------------------------|
//! | call event  | `T#<t>#CALL#<call id>`     | `EV#<event key>`       | `T#<t>#CALLQ#<USER#u or EXT#e>` and `T#<t>#CALLQ` / `<occurred>#<call>#<event>` |
//! | quote       | `T#<t>#CARD#<card>`        | `QUOTE#<quote id>`     |                                                       |
//! | ticket      | `T#<t>#CARD#<card>`        | `TICKET#<ticket id>`   |                                                       |
//! | counter     | `T#<t>#COUNTER#<kind>`     | `COUNTER` (`value`)    |                                                       |
//!
//! A numbered record is written in one transaction with the call event (its idempotency key)
//! and the counter moved from the value read to the next one, on the condition that nobody
//! moved it meanwhile. A lost race reads the counter again and retries: numbers are distinct and
//! gapless, and a repeated call event takes no number at all.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, IdentityKey};
use onecrm_domain::pbx::call::{CallRecord, CallWrite, CallWriteOutcome, Opened, RecordKind};
use onecrm_domain::ports::CallRepository;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;
use onecrm_domain::timeline::TimelineEntry;

use super::cursor;
use super::identity::CLAIM;
use super::tx::{Committed, Transaction};
use super::*;

/// Counter races one event may lose before it gives up (a PBX retries a 503).
const COUNTER_ATTEMPTS: usize = 10;
const COUNTER: &str = "counter";
/// How long one event may keep retrying a contended counter.
const RECORD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

fn call_pk(t: &TenantId, call_id: &str) -> String {
    format!("T#{t}#CALL#{call_id}")
}
fn queue_pk(t: &TenantId, agent: Option<&str>) -> String {
    match agent {
        Some(agent) => format!("T#{t}#CALLQ#{agent}"),
        None => format!("T#{t}#CALLQ"),
    }
}
/// A quote, ticket or lead makes the call's write one transaction; anything else is plain.
fn opens_anything(write: &CallWrite) -> bool {
    write.opened.is_some() || write.lead.is_some()
}

fn counter_pk(t: &TenantId, kind: RecordKind) -> String {
    format!("T#{t}#COUNTER#{}", kind.as_str())
}

impl CrmStore {
    fn call_item(&self, tenant: &TenantId, record: &CallRecord) -> Result<Item, PortError> {
        let position = format!(
            "{}#{}#{}",
            to_sortable(&record.occurred_at),
            record.call_id,
            record.event_key
        );
        let mut keys = vec![
            ("pk", call_pk(tenant, &record.call_id)),
            ("sk", format!("EV#{}", record.event_key)),
            ("gsi2pk", queue_pk(tenant, None)),
            ("gsi2sk", position.clone()),
        ];
        if let Some(agent) = record.agent_key() {
            keys.push(("gsi1pk", queue_pk(tenant, Some(&agent))));
            keys.push(("gsi1sk", position));
        }
        item(record, "call", &keys)
    }

    fn opened_item(&self, tenant: &TenantId, opened: &Opened) -> Result<Item, PortError> {
        match opened {
            Opened::Quote(q) => item(
                opened,
                "quote",
                &[
                    ("pk", keys::card(tenant, &q.card_id)),
                    ("sk", format!("QUOTE#{}", q.quote_id)),
                ],
            ),
            Opened::Ticket(t) => item(
                opened,
                "ticket",
                &[
                    ("pk", keys::card(tenant, &t.card_id)),
                    ("sk", format!("TICKET#{}", t.ticket_id)),
                ],
            ),
        }
    }

    async fn counter_value(&self, tenant: &TenantId, kind: RecordKind) -> Result<u64, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(counter_pk(tenant, kind)))
            .key("sk", s("COUNTER"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("value").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .unwrap_or(0))
    }

    fn call_transaction(
        &self,
        tenant: &TenantId,
        write: &CallWrite,
        counter: Option<(RecordKind, u64)>,
    ) -> Result<Transaction, PortError> {
        let mut tx = Transaction::idempotent_on(
            &self.table,
            "call event",
            self.call_item(tenant, &write.record)?,
        )?;
        if let Some(lead) = &write.lead {
            let lead_ref = lead.as_ref();
            for phone in &lead.phones {
                self.add_identity(
                    &mut tx,
                    tenant,
                    &IdentityKey::Phone(phone.clone()),
                    &lead_ref,
                    true,
                )?;
            }
            tx.put(
                "card",
                self.card_item(tenant, lead)?,
                Some("attribute_not_exists(pk)"),
            )?;
        }
        // A call that opens nothing is one conditional PutItem; its timeline entry follows in a
        // write of its own (see `record_call`). What opens a record stays all-or-nothing.
        if let Some(entry) = write.entry.as_ref().filter(|_| opens_anything(write)) {
            tx.put("timeline entry", self.timeline_item(tenant, entry)?, None)?;
        }
        if let Some(opened) = &write.opened {
            tx.put("opened record", self.opened_item(tenant, opened)?, None)?;
        }
        if let Some((kind, current)) = counter {
            let mut update = aws_sdk_dynamodb::types::Update::builder()
                .key("pk", s(counter_pk(tenant, kind)))
                .key("sk", s("COUNTER"))
                .update_expression("SET #v = :next")
                .expression_attribute_names("#v", "value")
                .expression_attribute_values(":next", n(current + 1));
            update = if current == 0 {
                update.condition_expression("attribute_not_exists(#v)")
            } else {
                update
                    .condition_expression("#v = :current")
                    .expression_attribute_values(":current", n(current))
            };
            tx.update(COUNTER, update)?;
        }
        Ok(tx)
    }

    /// The timeline entry of a call that opened nothing, at the stored call's time and card.
    async fn put_plain_entry(
        &self,
        tenant: &TenantId,
        write: &CallWrite,
        stored: &CallRecord,
    ) -> Result<(), PortError> {
        let Some(entry) = write.entry.as_ref().filter(|_| !opens_anything(write)) else {
            return Ok(());
        };
        if stored.cards.first().map(|c| c.card_id.as_str()) != Some(entry.card_id.as_str()) {
            return Ok(());
        }
        let mut entry = entry.clone();
        entry.occurred_at = stored.occurred_at;
        self.ensure_entry(tenant, &entry).await
    }

    async fn stored_call(
        &self,
        tenant: &TenantId,
        call_id: &str,
        event_key: &str,
    ) -> Result<Option<CallRecord>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(call_pk(tenant, call_id)))
            .key("sk", s(format!("EV#{event_key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    /// Cards by id in `BatchGetItem`s of at most 100 keys, unprocessed keys asked again.
    pub(super) async fn cards_by_id(
        &self,
        tenant: &TenantId,
        card_ids: &[String],
    ) -> Result<Vec<Card>, PortError> {
        let keys = card_ids
            .iter()
            .map(|id| super::batch::key(keys::card(tenant, id), "PROFILE"))
            .collect();
        let found = super::batch::get_all(&self.client, &self.table, keys, true, None).await?;
        let cards = found
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Card>, _>>()?;
        Ok(cards)
    }
}

#[async_trait]
impl CallRepository for CrmStore {
    async fn record_call(
        &self,
        tenant: &TenantId,
        write: &CallWrite,
    ) -> Result<CallWriteOutcome, PortError> {
        let counted = write.opened.as_ref().map(Opened::kind);
        // A pop-up is useless late, and the function has 6 s: give up (503, the PBX retries and
        // gets the stored answer if a late attempt landed) rather than overrun.
        let deadline = std::time::Instant::now() + RECORD_DEADLINE;
        for attempt in 0..COUNTER_ATTEMPTS {
            if std::time::Instant::now() > deadline {
                break;
            }
            if attempt > 0 {
                // Jittered, so racing calls do not collide again in step.
                tokio::time::sleep(crate::backoff::delay(
                    attempt as u32,
                    std::time::Duration::from_millis(5),
                    std::time::Duration::from_millis(100),
                    None,
                ))
                .await;
            }
            let mut write = write.clone();
            let counter = match counted {
                Some(kind) => {
                    let current = self.counter_value(tenant, kind).await?;
                    write.numbered(current + 1);
                    Some((kind, current))
                }
                None => None,
            };
            let tx = self.call_transaction(tenant, &write, counter)?;
            match tx.commit(&self.client).await? {
                Committed::Applied => {
                    self.put_plain_entry(tenant, &write, &write.record).await?;
                    // A lead's last touch moves forward in its own small write, as for messages.
                    if let (Some(touch), Some(entry)) = (&write.touch, &write.entry) {
                        self.move_last_touch(tenant, &entry.card_id, touch).await?;
                    }
                    return Ok(CallWriteOutcome::Applied(write.record));
                }
                Committed::Duplicate => {
                    return match self
                        .stored_call(tenant, &write.record.call_id, &write.record.event_key)
                        .await?
                    {
                        Some(stored) => {
                            // The first delivery may have stopped between its two writes: the
                            // entry is written again where it was (same key), harmless if there.
                            self.put_plain_entry(tenant, &write, &stored).await?;
                            Ok(CallWriteOutcome::Duplicate(stored))
                        }
                        None => Err(PortError::Unavailable(
                            "call event exists but did not read back".into(),
                        )),
                    };
                }
                Committed::ConditionFailed(CLAIM) => return Ok(CallWriteOutcome::IdentityTaken),
                // Another call took this number: read the counter again.
                Committed::ConditionFailed(COUNTER) => continue,
                Committed::ConditionFailed(other) => {
                    return Err(PortError::Rejected(format!("{other} failed its condition")))
                }
            }
        }
        Err(PortError::Unavailable(
            "the record counter stayed contended; retry".into(),
        ))
    }

    async fn call_event(
        &self,
        tenant: &TenantId,
        call_id: &str,
        event_key: &str,
    ) -> Result<Option<CallRecord>, PortError> {
        self.stored_call(tenant, call_id, event_key).await
    }

    async fn call_queue(
        &self,
        tenant: &TenantId,
        agent: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<CallRecord>, PortError> {
        let (index, attribute) = match agent {
            Some(_) => ("gsi1", "gsi1pk"),
            None => ("gsi2", "gsi2pk"),
        };
        let partition = queue_pk(tenant, agent);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", attribute)
            .expression_attribute_values(":pk", s(partition.clone()))
            .scan_index_forward(false);
        let (items, next) = cursor::query_page(query, attribute, &partition, &page).await?;
        Ok(Page {
            items: items.into_iter().map(from_item).collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn ensure_entry(
        &self,
        tenant: &TenantId,
        entry: &TimelineEntry,
    ) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.timeline_item(tenant, entry)?))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn opened_on(&self, tenant: &TenantId, card_id: &str) -> Result<Vec<Opened>, PortError> {
        let mut opened: Vec<Opened> = self
            .query_as(keys::card(tenant, card_id), "QUOTE#", false, None)
            .await?;
        opened.extend(
            self.query_as::<Opened>(keys::card(tenant, card_id), "TICKET#", false, None)
                .await?,
        );
        Ok(opened)
    }
}
