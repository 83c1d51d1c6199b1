//! The integration-log table.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use onecrm_domain::error::PortError;
use onecrm_domain::log::{Integration, LogRecord};
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::ports::{LogReader, LogSink};
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;

use super::cursor;
use super::*;

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
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        let sk_name = pk_name.replace("pk", "sk");
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

    async fn by_trace(
        &self,
        tenant: &TenantId,
        trace_id: &str,
        page: PageRequest,
    ) -> Result<Page<LogRecord>, PortError> {
        self.query(
            Some("gsi1"),
            "gsi1pk",
            keys::trace(tenant, trace_id),
            None,
            page,
        )
        .await
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
