//! The one way to write and read many items: BatchWriteItem in requests of 25 and
//! BatchGetItem in requests of 100 (DynamoDB's limits, enforced here), retrying what DynamoDB
//! leaves unprocessed with the shared backoff.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use onecrm_domain::error::PortError;

use super::{port_error, Item};

/// BatchWriteItem takes at most 25 requests.
pub const MAX_BATCH_WRITE: usize = 25;
/// BatchGetItem takes at most 100 keys.
pub const MAX_BATCH_GET: usize = 100;
/// Items this process has written with [`put_all`] (`make bench-sync` compares its rate with the
/// emulator's raw rate for the same count).
static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn items_written() -> u64 {
    WRITTEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Rounds of retrying what DynamoDB left unprocessed (throttling) before giving up.
const UNPROCESSED_ATTEMPTS: u32 = 6;

fn key_of(item: &Item) -> (String, String) {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    (text("pk"), text("sk"))
}

/// The items with each key once, the first of a key kept (DynamoDB refuses a batch that names
/// a key twice), in their order.
pub fn unique_keys(items: Vec<Item>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items
        .into_iter()
        .filter(|item| seen.insert(key_of(item)))
        .collect()
}

fn wait(attempt: u32) -> Duration {
    crate::backoff::delay(
        attempt,
        Duration::from_millis(50),
        Duration::from_secs(2),
        None,
    )
}

/// `make bench-sync` only: with `ONECRM_RECORD_WRITES=<file>`, every item put here is also
/// appended to the file (one JSON array per call), so the emulator's raw rate can be measured
/// on exactly the same items.
fn record(items: &[Item]) {
    static FILE: std::sync::OnceLock<Option<std::sync::Mutex<std::fs::File>>> =
        std::sync::OnceLock::new();
    let file = FILE.get_or_init(|| {
        let path = crate::config::optional("ONECRM_RECORD_WRITES")?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
            .map(std::sync::Mutex::new)
    });
    let Some(file) = file else {
        return;
    };
    let values: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|i| serde_dynamo::aws_sdk_dynamodb_1::from_item(i.clone()).ok())
        .collect();
    if let (Ok(mut file), Ok(line)) = (file.lock(), serde_json::to_string(&values)) {
        use std::io::Write;
        let _ = writeln!(file, "{line}");
    }
}

/// Puts every item (each key once), 25 a request.
pub async fn put_all(client: &Client, table: &str, items: Vec<Item>) -> Result<(), PortError> {
    let items = unique_keys(items);
    record(&items);
    let mut requests: Vec<WriteRequest> = Vec::with_capacity(items.len());
    for item in items {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| PortError::Rejected(e.to_string()))?;
        requests.push(WriteRequest::builder().put_request(put).build());
    }
    for batch in requests.chunks(MAX_BATCH_WRITE) {
        let mut pending = batch.to_vec();
        for attempt in 0..UNPROCESSED_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(wait(attempt)).await;
            }
            let out = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| port_error("BatchWriteItem", e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
            if pending.is_empty() {
                break;
            }
        }
        WRITTEN.fetch_add(
            (batch.len() - pending.len()) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if !pending.is_empty() {
            return Err(PortError::Unavailable(format!(
                "BatchWriteItem: {} item(s) unprocessed after {UNPROCESSED_ATTEMPTS} attempts",
                pending.len()
            )));
        }
    }
    Ok(())
}

/// The items of these keys that exist (in no particular order), 100 keys a request.
pub async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent: bool,
    projection: Option<&str>,
) -> Result<Vec<Item>, PortError> {
    let keys = unique_keys(keys);
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BATCH_GET) {
        let mut wanted = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .consistent_read(consistent);
        if let Some(projection) = projection {
            wanted = wanted.projection_expression(projection);
            // Reserved words (`date`) are written `#date` in a projection.
            for name in projection
                .split(',')
                .filter_map(|n| n.trim().strip_prefix('#'))
            {
                wanted = wanted.expression_attribute_names(format!("#{name}"), name);
            }
        }
        let mut request = Some(
            wanted
                .build()
                .map_err(|e| PortError::Rejected(e.to_string()))?,
        );
        let mut attempt = 0u32;
        while let Some(wanted) = request.take() {
            let out = client
                .batch_get_item()
                .request_items(table, wanted)
                .send()
                .await
                .map_err(|e| port_error("BatchGetItem", e))?;
            found.extend(
                out.responses
                    .unwrap_or_default()
                    .remove(table)
                    .unwrap_or_default(),
            );
            request = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(table))
                .filter(|k| !k.keys().is_empty());
            if request.is_some() {
                attempt += 1;
                if attempt >= UNPROCESSED_ATTEMPTS {
                    return Err(PortError::Unavailable(
                        "BatchGetItem: keys left unprocessed".into(),
                    ));
                }
                tokio::time::sleep(wait(attempt)).await;
            }
        }
    }
    Ok(found)
}

/// A key item (`pk`, `sk`).
pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), super::s(pk)),
        ("sk".to_string(), super::s(sk)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::s;

    #[test]
    fn a_key_is_written_once_the_first_kept() {
        let item = |pk: &str, v: &str| {
            let mut i = key(pk.into(), "1");
            i.insert("v".into(), s(v));
            i
        };
        let unique = unique_keys(vec![item("a", "x"), item("b", "y"), item("a", "z")]);
        assert_eq!(unique.len(), 2);
        assert_eq!(unique[0].get("v").and_then(|v| v.as_s().ok()).unwrap(), "x");
    }
}
