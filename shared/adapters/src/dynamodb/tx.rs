//! The one way every worker writes an effect: a DynamoDB transaction that always carries the
//! event's idempotency key (`scope + external id`, `attribute_not_exists`) as its first action,
//! so a duplicate delivery, even a concurrent one, changes nothing and is reported the same way
//! everywhere. Transaction conflicts are retried quietly; DynamoDB's limits (100 actions, 400 KB
//! per item) are checked before sending, with an error that says which item is too large.
//!
//! An effect that is one item keyed by the event itself (a message in its conversation) is its
//! own idempotency key ([`Transaction::idempotent_on`]), and a transaction of one put is sent as
//! a conditional `PutItem`: the same all-or-nothing write and the same outcome, at 1 write unit
//! per KB instead of 4 (a transaction doubles every item, and a separate key is a second item).

use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use onecrm_domain::error::PortError;
use onecrm_domain::ports::IdempotencyKey;
use onecrm_domain::tenant::TenantId;

use super::{keys, n, port_error, s, Item};

/// DynamoDB's limit of actions in one `TransactWriteItems`.
pub const MAX_ACTIONS: usize = 100;
/// DynamoDB's item size limit (attribute names and values).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's limit on one transaction's total size.
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// Attempts when another transaction holds one of our items (the SDK does not retry these).
const CONFLICT_ATTEMPTS: u32 = 4;

/// How a transaction ended, when it did not fail outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Applied,
    /// The idempotency key existed: the event was already applied; nothing changed.
    Duplicate,
    /// The condition of the action with this label failed (an identity claimed by another
    /// card, a card that vanished...); nothing changed.
    ConditionFailed(&'static str),
}

pub struct Transaction {
    table: String,
    actions: Vec<TransactWriteItem>,
    labels: Vec<&'static str>,
    idempotent: bool,
    /// Bytes of the items put so far (updates and checks are small and not counted).
    bytes: usize,
}

/// Approximate stored size of an item as DynamoDB counts it: names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

fn built(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::Rejected(e.to_string())
}

impl Transaction {
    /// A transaction without an idempotency key (tenant onboarding, imports).
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_string(),
            actions: Vec::new(),
            labels: Vec::new(),
            idempotent: false,
            bytes: 0,
        }
    }

    /// A transaction whose first action claims the event's idempotency key.
    pub fn idempotent(
        table: &str,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Self, PortError> {
        let item = Item::from([
            ("pk".to_string(), s(keys::idempotency(tenant, key))),
            ("sk".to_string(), s("IDEM")),
            ("entity".to_string(), s("idempotency")),
            ("scope".to_string(), s(key.scope.clone())),
            ("expires_at".to_string(), n(key.expires_at.timestamp())),
        ]);
        Self::idempotent_on(table, "idempotency key", item)
    }

    /// A transaction whose first action is an item keyed by the event itself (its key derives
    /// from the partner's event id): the item is the idempotency key, no separate one is written.
    pub fn idempotent_on(table: &str, label: &'static str, item: Item) -> Result<Self, PortError> {
        let mut tx = Self::new(table);
        tx.idempotent = true;
        tx.put(label, item, Some("attribute_not_exists(pk)"))?;
        Ok(tx)
    }

    pub fn len(&self) -> usize {
        self.actions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    fn push(&mut self, label: &'static str, action: TransactWriteItem) -> Result<(), PortError> {
        if self.actions.len() == MAX_ACTIONS {
            return Err(PortError::Rejected(format!(
                "a transaction takes at most {MAX_ACTIONS} actions; '{label}' would be action {}",
                MAX_ACTIONS + 1
            )));
        }
        self.actions.push(action);
        self.labels.push(label);
        Ok(())
    }

    pub fn put(
        &mut self,
        label: &'static str,
        item: Item,
        condition: Option<&str>,
    ) -> Result<&mut Self, PortError> {
        self.put_with(label, item, condition, None)
    }

    pub fn put_with(
        &mut self,
        label: &'static str,
        item: Item,
        condition: Option<&str>,
        values: Option<Item>,
    ) -> Result<&mut Self, PortError> {
        self.put_named(label, item, condition, None, values)
    }

    /// [`Transaction::put_with`] whose condition names attributes through `#names` (reserved
    /// words such as `state`).
    pub fn put_named(
        &mut self,
        label: &'static str,
        item: Item,
        condition: Option<&str>,
        names: Option<std::collections::HashMap<String, String>>,
        values: Option<Item>,
    ) -> Result<&mut Self, PortError> {
        let size = item_size(&item);
        if size > MAX_ITEM_BYTES {
            return Err(PortError::Rejected(format!(
                "{label} is {size} bytes; DynamoDB items are at most {MAX_ITEM_BYTES}"
            )));
        }
        if self.bytes + size > MAX_TRANSACTION_BYTES {
            return Err(PortError::Rejected(format!(
                "adding {label} makes the transaction {} bytes; at most {MAX_TRANSACTION_BYTES}",
                self.bytes + size
            )));
        }
        self.bytes += size;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(built)?;
        self.push(label, TransactWriteItem::builder().put(put).build())?;
        Ok(self)
    }

    /// `update` comes without its table name; the transaction's is set here.
    pub fn update(
        &mut self,
        label: &'static str,
        update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    ) -> Result<&mut Self, PortError> {
        let update: Update = update.table_name(&self.table).build().map_err(built)?;
        self.push(label, TransactWriteItem::builder().update(update).build())?;
        Ok(self)
    }

    pub fn delete(
        &mut self,
        label: &'static str,
        pk: String,
        sk: String,
    ) -> Result<&mut Self, PortError> {
        let delete = aws_sdk_dynamodb::types::Delete::builder()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .build()
            .map_err(built)?;
        self.push(label, TransactWriteItem::builder().delete(delete).build())?;
        Ok(self)
    }

    pub fn check(
        &mut self,
        label: &'static str,
        check: aws_sdk_dynamodb::types::builders::ConditionCheckBuilder,
    ) -> Result<&mut Self, PortError> {
        let check: ConditionCheck = check.table_name(&self.table).build().map_err(built)?;
        self.push(
            label,
            TransactWriteItem::builder().condition_check(check).build(),
        )?;
        Ok(self)
    }

    /// Sends the transaction, retrying conflicts with another transaction quietly.
    pub async fn commit(&self, client: &Client) -> Result<Committed, PortError> {
        if self.actions.is_empty() {
            return Ok(Committed::Applied);
        }
        if let [TransactWriteItem { put: Some(put), .. }] = self.actions.as_slice() {
            return self.put_alone(client, put).await;
        }
        retry_conflicts(CONFLICT_ATTEMPTS, || async {
            let sent = client
                .transact_write_items()
                .set_transact_items(Some(self.actions.clone()))
                .send()
                .await;
            let error = match sent {
                Ok(_) => return Attempt::Done(Ok(Committed::Applied)),
                Err(e) => e,
            };
            let codes = super::cancellation_codes(&error);
            let service_code = error
                .as_service_error()
                .and_then(|e| e.code())
                .unwrap_or("");
            let conflict = matches!(
                service_code,
                "TransactionConflictException" | "TransactionInProgressException"
            ) || codes
                .as_ref()
                .is_some_and(|c| c.iter().any(|c| c == "TransactionConflict"));
            if conflict {
                return Attempt::Conflict;
            }
            Attempt::Done(match codes {
                Some(codes) => self.outcome(&codes),
                None => Err(port_error("TransactWriteItems", error)),
            })
        })
        .await
    }

    /// A single put needs no transaction: a conditional `PutItem` is just as atomic.
    async fn put_alone(&self, client: &Client, put: &Put) -> Result<Committed, PortError> {
        let sent = client
            .put_item()
            .table_name(put.table_name())
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_string))
            .set_expression_attribute_names(put.expression_attribute_names().cloned())
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Committed::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                self.outcome(&["ConditionalCheckFailed".to_string()])
            }
            Err(e) => Err(port_error("PutItem", e)),
        }
    }

    fn outcome(&self, codes: &[String]) -> Result<Committed, PortError> {
        let failed = codes.iter().position(|c| c == "ConditionalCheckFailed");
        match failed {
            Some(0) if self.idempotent => Ok(Committed::Duplicate),
            Some(i) => Ok(Committed::ConditionFailed(
                self.labels.get(i).copied().unwrap_or("unknown action"),
            )),
            None => Err(PortError::Unavailable(format!(
                "transaction cancelled: {codes:?}"
            ))),
        }
    }
}

/// One try of a write: done (either way), or beaten by a concurrent transaction.
pub enum Attempt<T> {
    Done(Result<T, PortError>),
    Conflict,
}

/// Retries conflicts with exponential backoff and full jitter; a conflict that outlasts the
/// attempts is `Unavailable`, so the message goes back to the queue and is retried later.
pub async fn retry_conflicts<T, F, Fut>(attempts: u32, mut attempt: F) -> Result<T, PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt<T>>,
{
    for n in 0..attempts {
        if n > 0 {
            let wait = crate::backoff::delay(
                n,
                Duration::from_millis(40),
                Duration::from_millis(500),
                None,
            );
            tokio::time::sleep(wait).await;
        }
        if let Attempt::Done(result) = attempt().await {
            return result;
        }
        tracing::debug!(attempt = n + 1, "transaction conflict; retrying");
    }
    Err(PortError::Unavailable(format!(
        "transaction conflicted {attempts} times with concurrent writes"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn item(bytes: usize) -> Item {
        Item::from([
            ("pk".to_string(), s("x")),
            ("blob".to_string(), s("a".repeat(bytes))),
        ])
    }

    #[test]
    fn limits_are_enforced_before_sending_with_a_clear_error() {
        let mut tx = Transaction::new("t");
        for _ in 0..MAX_ACTIONS {
            tx.put("timeline entry", item(10), None).unwrap();
        }
        let err = tx.put("task", item(10), None).err().unwrap();
        assert!(
            err.to_string().contains("at most 100 actions") && err.to_string().contains("'task'"),
            "{err}"
        );
        let err = Transaction::new("t")
            .put("note", item(MAX_ITEM_BYTES), None)
            .err()
            .unwrap();
        assert!(
            matches!(err, PortError::Rejected(_)) && err.to_string().contains("note is"),
            "{err}"
        );
        assert!(Transaction::new("t")
            .put("note", item(MAX_ITEM_BYTES - 20), None)
            .is_ok());
    }

    #[test]
    fn outcomes_name_the_failed_action() {
        let key = IdempotencyKey {
            scope: "whatsapp.message".into(),
            key: "wamid.X".into(),
            expires_at: chrono::Utc::now(),
        };
        let mut tx = Transaction::idempotent("t", &TenantId::parse("demo").unwrap(), &key).unwrap();
        tx.put("phone identity", item(1), Some("attribute_not_exists(pk)"))
            .unwrap();
        let codes = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            tx.outcome(&codes(&["ConditionalCheckFailed", "None"]))
                .unwrap(),
            Committed::Duplicate
        );
        assert_eq!(
            tx.outcome(&codes(&["None", "ConditionalCheckFailed"]))
                .unwrap(),
            Committed::ConditionFailed("phone identity")
        );
        assert!(tx.outcome(&codes(&["None", "ValidationError"])).is_err());
    }

    #[tokio::test]
    async fn conflicts_are_retried_quietly_then_given_back_as_retryable() {
        let tries = AtomicU32::new(0);
        let result = retry_conflicts(4, || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Attempt::Conflict,
                _ => Attempt::Done(Ok("applied")),
            }
        })
        .await;
        assert_eq!(
            (result.unwrap(), tries.load(Ordering::SeqCst)),
            ("applied", 3)
        );
        let always = retry_conflicts::<(), _, _>(3, || async { Attempt::Conflict }).await;
        assert!(matches!(always, Err(e) if e.is_retryable()));
    }
}
