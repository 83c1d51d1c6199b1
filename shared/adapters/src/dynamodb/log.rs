//! The integration-log table.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::envelope::TraceId;
use onecrm_domain::error::PortError;
use onecrm_domain::log::{Integration, LogRecord, LogResult};
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::ports::{LogReader, LogSink};
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;

use super::cursor;
use super::*;

/// A trace path is a handful of records; this bounds a pathological one.
const MAX_TRACE_RECORDS: usize = 1000;

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

    /// Where the records of a trace without a time in its id are: the trace index (keys only)
    /// names the opening record in each integration's log, whose sort-key prefix they share.
    async fn indexed_paths(
        &self,
        tenant: &TenantId,
        trace_id: &str,
    ) -> Result<Vec<(String, String)>, PortError> {
        let openings = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(keys::trace(tenant, trace_id)))
            .send()
            .await
            .map_err(|e| port_error("Query", e))?;
        let mut paths = Vec::new();
        for key in openings.items.unwrap_or_default() {
            let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) =
                (key.get("pk"), key.get("sk"))
            else {
                continue;
            };
            // `<trace start>#<trace id>#`: the prefix every record of this trace shares.
            let prefix: String = sk.splitn(3, '#').take(2).map(|p| format!("{p}#")).collect();
            if !paths.contains(&(pk.clone(), prefix.clone())) {
                paths.push((pk.clone(), prefix));
            }
        }
        Ok(paths)
    }

    async fn query(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        // Every index of this table sorts by the base table's `sk`.
        let sk_name = "sk";
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(index.map(str::to_string))
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":pk", s(pk.clone()))
            .scan_index_forward(false);
        request = match range {
            Some((from, to)) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
                .expression_attribute_names("#sk", sk_name)
                .expression_attribute_values(":from", s(to_sortable(&from)))
                .expression_attribute_values(":to", s(format!("{}#", to_sortable(&to)))),
            None => request.key_condition_expression("#pk = :pk"),
        };
        let (items, next) = cursor::query_page(request, pk_name, &pk, &page).await?;
        Ok(Page {
            items: items
                .into_iter()
                .map(log_record_from_item)
                .collect::<Result<_, _>>()?,
            next,
        })
    }
}

/// Records of one trace in one integration's log share this sort-key prefix: the trace's start,
/// then its id. Listing by time therefore orders by when the event arrived, its records together.
fn trace_prefix(record: &LogRecord) -> String {
    format!(
        "{}#{}#",
        to_sortable(&record.trace_started_at),
        record.trace_id.as_str()
    )
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

/// A record's item: its keys, and the indexes it belongs to.
fn log_row(record: &LogRecord) -> Result<Item, PortError> {
    let sort = format!(
        "{}{}#{}",
        trace_prefix(record),
        to_sortable(&record.occurred_at),
        record.log_id
    );
    let mut keys = vec![
        ("pk", keys::log(&record.tenant_id, record.integration)),
        ("sk", sort),
    ];
    // A trace whose id carries its start time (the UUIDv7 ids we mint) is found from the id
    // alone: its records share a sort-key prefix. Others (ids a caller brought along) are
    // indexed by trace id, once: the opening record, and errors, so a failure is found even
    // when the record that opened its trace was never stored.
    let indexed = record.trace_id.started_at().is_none()
        && (!record.follows || record.result == LogResult::Error);
    if indexed {
        keys.push((
            "gsi1pk",
            keys::trace(&record.tenant_id, record.trace_id.as_str()),
        ));
    }
    if let Some(code) = &record.error_code {
        keys.push(("gsi2pk", keys::error_code(&record.tenant_id, code)));
    }
    let mut row = item(record, "log", &keys)?;
    if let Some(payload) = &record.payload {
        row.insert("payload".into(), s(payload.to_string()));
    }
    Ok(row)
}

impl LogStore {
    /// Many records at once, 25 a request (`make bench-logs` fills the table with them).
    pub async fn put_all(&self, records: &[LogRecord]) -> Result<(), PortError> {
        let rows = records.iter().map(log_row).collect::<Result<Vec<_>, _>>()?;
        super::batch::put_all(&self.client, &self.table, rows).await
    }
}

#[async_trait]
impl LogSink for LogStore {
    async fn put(&self, record: &LogRecord) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(log_row(record)?))
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
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        self.query(
            None,
            "pk",
            keys::log(tenant, integration),
            Some((from, to)),
            page,
        )
        .await
    }

    /// A trace's records share a sort-key prefix in each integration's log, known from the
    /// trace id (its start time) or from the trace index. Newest first; a path is small
    /// (bounded at 1,000 records), so it is read whole and paged here.
    async fn by_trace(
        &self,
        tenant: &TenantId,
        trace_id: &str,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        let partition = keys::trace(tenant, trace_id);
        let skip = match &page.cursor {
            Some(c) => cursor::decode(c, "trace", &partition)?
                .get("offset")
                .and_then(|v| v.as_s().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| PortError::Rejected("invalid page cursor".into()))?,
            None => 0,
        };
        let paths = match TraceId::new(trace_id).started_at() {
            // Every integration's log may hold a part of the path (a webhook and the partner
            // call it caused): one tight prefix query each.
            Some(started) => Integration::ALL
                .iter()
                .map(|i| {
                    (
                        keys::log(tenant, *i),
                        format!("{}#{trace_id}#", to_sortable(&started)),
                    )
                })
                .collect(),
            None => self.indexed_paths(tenant, trace_id).await?,
        };
        let mut records = Vec::new();
        for (partition, prefix) in paths {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(partition.clone()))
                    .expression_attribute_values(":prefix", s(prefix.clone()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| port_error("Query", e))?;
                for item in out.items.unwrap_or_default() {
                    records.push(log_record_from_item(item)?);
                }
                start = out.last_evaluated_key;
                if start.is_none() || records.len() >= MAX_TRACE_RECORDS {
                    break;
                }
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse((r.occurred_at, r.log_id.clone())));
        records.dedup_by(|a, b| a.log_id == b.log_id);
        records.truncate(MAX_TRACE_RECORDS);
        let end = (skip + page.size()).min(records.len());
        let next = (end < records.len()).then(|| {
            cursor::encode(&Item::from([
                ("trace".to_string(), s(partition.clone())),
                ("offset".to_string(), s(end.to_string())),
            ]))
        });
        Ok(Page {
            items: records.drain(skip.min(end)..end).collect(),
            next: next.flatten(),
        })
    }

    async fn by_error_code(
        &self,
        tenant: &TenantId,
        code: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        self.query(
            Some("gsi2"),
            "gsi2pk",
            keys::error_code(tenant, code),
            Some((from, to)),
            page,
        )
        .await
    }
}
