//! The raw-event table: authenticated deliveries exactly as received (unmasked; encrypted at
//! rest; only the webhooks write it and only replay roles read it) and held events.
//!
//! | item               | pk                                             | sk                     | gsi1 (pk / sk)                          |
//! |--------------------|------------------------------------------------|------------------------|-----------------------------------------|
//! | delivery part      | `T#<t>#RAW#<trace>`                            | `<integration>#<received|released id>#<part>` |                  |
//! | unparsed event     | `T#<t>#UNPARSED#<integration>`                 | `<content id>`         |                                         |
//! | unrouted event     | `UNROUTED#<integration>#<route key>`           | `<content id>`         | `UNROUTED#<integration>` / `<received>#<id>` |
//! Everything expires with the log retention (TTL `expires_at`).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::ingress::{ArchivedDelivery, HeldEvent, Hold, Kept};
use onecrm_domain::log::Integration;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::ports::EventArchive;
use onecrm_domain::tenant::{TenantId, TenantRoute};
use onecrm_domain::time::to_sortable;

use super::cursor;
use super::*;

/// Text per item, well under DynamoDB's 400 KB item limit once keys and attributes are added.
pub const MAX_TEXT_PER_ITEM: usize = 300 * 1024;
/// A held event's reason and context are ours to bound (serde messages quote the input).
const MAX_NOTE_CHARS: usize = 2000;

fn bounded(text: &str) -> String {
    text.chars().take(MAX_NOTE_CHARS).collect()
}

pub struct ArchiveStore {
    client: Client,
    table: String,
}

/// Cuts `text` into pieces of at most `max` bytes on character boundaries.
pub(crate) fn pieces(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

fn held_pk(hold: &Hold, integration: Integration) -> String {
    match hold {
        Hold::Unparsed(tenant) => keys::unparsed(tenant, integration),
        Hold::Parked(tenant) => keys::parked(tenant, integration),
        Hold::Unrouted(route) => keys::unrouted(integration, route),
    }
}

fn attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn held_from_item(item: &Item) -> Result<HeldEvent, PortError> {
    let broken = |what: &str| PortError::Rejected(format!("held event without {what}"));
    let integration: Integration = serde_json::from_value(serde_json::Value::String(
        attr(item, "integration")
            .ok_or_else(|| broken("integration"))?
            .into(),
    ))
    .map_err(|_| broken("a known integration"))?;
    let hold = match (attr(item, "tenant_id"), attr(item, "route")) {
        (Some(t), _) if attr(item, "parked").is_some() => {
            Hold::Parked(TenantId::parse(t).map_err(PortError::Rejected)?)
        }
        (Some(t), _) => Hold::Unparsed(TenantId::parse(t).map_err(PortError::Rejected)?),
        (None, Some(r)) => {
            Hold::Unrouted(TenantRoute::from_key(r).ok_or_else(|| broken("a route"))?)
        }
        _ => return Err(broken("a tenant or route")),
    };
    let received_at: DateTime<Utc> = attr(item, "received_at")
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| broken("received_at"))?;
    Ok(HeldEvent {
        hold,
        verified_by: attr(item, "verified_by")
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default(),
        integration,
        id: attr(item, "sk").ok_or_else(|| broken("sk"))?.into(),
        trace_id: TraceId::new(attr(item, "trace_id").unwrap_or_default()),
        received_at,
        path: attr(item, "path").unwrap_or_default().into(),
        raw: attr(item, "raw").unwrap_or_default().into(),
        context: attr(item, "context").map(str::to_string),
        reason: attr(item, "reason").unwrap_or_default().into(),
        expires_at: item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or_default(),
    })
}

/// The first item of each `(pk, sk)`: the same event held twice is one item.
impl ArchiveStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn delivery_items(d: &ArchivedDelivery) -> Vec<Item> {
        // One JSON text for the tenant's units, cut into parts if it is large.
        let text = serde_json::to_string(&d.units).unwrap_or_default();
        let parts = pieces(&text, MAX_TEXT_PER_ITEM);
        let count = parts.len();
        let group = d.released.as_deref().unwrap_or("received");
        parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                Item::from([
                    (
                        "pk".into(),
                        s(keys::raw_delivery(&d.tenant_id, d.trace_id.as_str())),
                    ),
                    (
                        "sk".into(),
                        s(format!("{}#{group}#{i:04}", d.integration.as_str())),
                    ),
                    ("entity".into(), s("raw_delivery")),
                    ("tenant_id".into(), s(d.tenant_id.as_str())),
                    ("received_at".into(), s(to_sortable(&d.received_at))),
                    ("parts".into(), n(count)),
                    ("units".into(), s(part)),
                    ("expires_at".into(), n(d.expires_at)),
                ])
            })
            .collect()
    }

    fn held_item(h: &HeldEvent) -> Item {
        let raw = pieces(&h.raw, MAX_TEXT_PER_ITEM);
        let mut item = Item::from([
            ("pk".into(), s(held_pk(&h.hold, h.integration))),
            ("sk".into(), s(h.id.clone())),
            ("entity".into(), s("held_event")),
            ("integration".into(), s(h.integration.as_str())),
            ("trace_id".into(), s(h.trace_id.as_str())),
            ("received_at".into(), s(to_sortable(&h.received_at))),
            ("path".into(), s(h.path.clone())),
            // An event over the item limit cannot be a real partner event; keep what fits.
            ("raw".into(), s(raw[0])),
            ("reason".into(), s(bounded(&h.reason))),
            (
                "verified_by".into(),
                s(serde_json::to_string(&h.verified_by).unwrap_or_default()),
            ),
            ("expires_at".into(), n(h.expires_at)),
        ]);
        if raw.len() > 1 {
            item.insert("truncated_from_bytes".into(), n(h.raw.len()));
        }
        if let Some(context) = &h.context {
            item.insert("context".into(), s(bounded(context)));
        }
        match &h.hold {
            Hold::Unparsed(tenant) => {
                item.insert("tenant_id".into(), s(tenant.as_str()));
            }
            Hold::Parked(tenant) => {
                item.insert("tenant_id".into(), s(tenant.as_str()));
                item.insert("parked".into(), s("1"));
            }
            Hold::Unrouted(route) => {
                item.insert("route".into(), s(route.key()));
                item.insert("gsi1pk".into(), s(keys::unrouted_all(h.integration)));
                item.insert(
                    "gsi1sk".into(),
                    s(format!("{}#{}", to_sortable(&h.received_at), h.id)),
                );
            }
        }
        item
    }

    /// Every item once, in batches (see `batch.rs`).
    async fn put_all(&self, items: Vec<Item>) -> Result<(), PortError> {
        super::batch::put_all(&self.client, &self.table, items).await
    }

    async fn held_page(
        &self,
        index: Option<&str>,
        partition_attribute: &str,
        partition: String,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            // The table itself reads consistently: a release never sees a held event it deleted.
            .set_consistent_read(index.is_none().then_some(true))
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", partition_attribute)
            .expression_attribute_values(":pk", s(partition.clone()));
        let (items, next) =
            cursor::query_page(query, partition_attribute, &partition, &page).await?;
        Ok(Page {
            items: items.iter().map(held_from_item).collect::<Result<_, _>>()?,
            next,
        })
    }

    /// The units of one archived delivery of a tenant, as `(path, raw JSON)`: as received, then
    /// any parts delivered later (held events released to the tenant).
    pub async fn delivery(
        &self,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(String, String)>, PortError> {
        let partition = keys::raw_delivery(tenant, trace);
        // sk `<integration>#<group>#<part>`: a group's parts join into one JSON text.
        let mut groups: Vec<(String, String)> = Vec::new();
        let mut page = PageRequest::first(100);
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .consistent_read(true)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(partition.clone()));
            let (items, next) = cursor::query_page(query, "pk", &partition, &page).await?;
            for item in &items {
                let sk = attr(item, "sk").unwrap_or_default();
                let group = sk
                    .rsplit_once('#')
                    .map(|(g, _)| g)
                    .unwrap_or(sk)
                    .to_string();
                let text = attr(item, "units").unwrap_or_default();
                match groups.last_mut() {
                    Some((g, joined)) if *g == group => joined.push_str(text),
                    _ => groups.push((group, text.to_string())),
                }
            }
            match next {
                Some(next) => page = PageRequest::after(100, next),
                None => break,
            }
        }
        // "received" sorts after "<held id>" hex? Put the delivery as received first.
        groups.sort_by_key(|(g, _)| !g.ends_with("#received"));
        let mut units = Vec::new();
        for (_, text) in groups {
            let part: Vec<(String, String)> = serde_json::from_str(&text)
                .map_err(|e| PortError::Rejected(format!("archived delivery is broken: {e}")))?;
            units.extend(part);
        }
        Ok(units)
    }
}

#[async_trait]
impl EventArchive for ArchiveStore {
    async fn keep(&self, kept: &[Kept]) -> Result<(), PortError> {
        let items: Vec<Item> = kept
            .iter()
            .flat_map(|k| match k {
                Kept::Delivery(d) => Self::delivery_items(d),
                Kept::Held(h) => vec![Self::held_item(h)],
            })
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        self.put_all(items).await
    }

    async fn unrouted(
        &self,
        integration: Integration,
        route: Option<&TenantRoute>,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        match route {
            Some(route) => {
                self.held_page(None, "pk", keys::unrouted(integration, route), page)
                    .await
            }
            None => {
                self.held_page(
                    Some("gsi1"),
                    "gsi1pk",
                    keys::unrouted_all(integration),
                    page,
                )
                .await
            }
        }
    }

    async fn unparsed(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        self.held_page(None, "pk", keys::unparsed(tenant, integration), page)
            .await
    }

    async fn parked(
        &self,
        tenant: &TenantId,
        integration: Integration,
        page: PageRequest,
    ) -> Result<Page<HeldEvent>, PortError> {
        self.held_page(None, "pk", keys::parked(tenant, integration), page)
            .await
    }

    async fn release(&self, held: &HeldEvent) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(held_pk(&held.hold, held.integration)))
            .key("sk", s(held.id.clone()))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pieces_rebuild_the_text_within_the_limit(text in "\\PC{0,400}", max in 4usize..64) {
            let parts = pieces(&text, max);
            prop_assert_eq!(parts.concat(), text.clone());
            prop_assert!(parts.iter().all(|p| p.len() <= max));
        }
    }
}
