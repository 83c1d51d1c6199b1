//! Opaque page cursors: DynamoDB's `LastEvaluatedKey`, bound to the partition it was read from
//! so a cursor cannot be replayed against another tenant's partition.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use onecrm_domain::error::PortError;
use onecrm_domain::page::PageRequest;

use super::{port_error, Item};

/// Every key attribute of both tables is a string, so a cursor is a map of strings.
pub(super) fn encode(key: &Item) -> Option<String> {
    let plain: BTreeMap<&str, &str> = key
        .iter()
        .map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect::<Option<_>>()?;
    Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&plain).ok()?))
}

pub(super) fn decode(
    cursor: &str,
    partition_attribute: &str,
    partition: &str,
) -> Result<Item, PortError> {
    let invalid = || PortError::Rejected("invalid page cursor".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let plain: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if plain.get(partition_attribute).map(String::as_str) != Some(partition) {
        return Err(invalid());
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

/// Runs one page of `query` (key condition already set on `partition_attribute` = `partition`).
pub(super) async fn query_page(
    query: QueryFluentBuilder,
    partition_attribute: &str,
    partition: &str,
    page: &PageRequest,
) -> Result<(Vec<Item>, Option<String>), PortError> {
    let start = match &page.cursor {
        Some(cursor) => Some(decode(cursor, partition_attribute, partition)?),
        None => None,
    };
    let out = query
        .limit(page.size() as i32)
        .set_exclusive_start_key(start)
        .send()
        .await
        .map_err(|e| port_error("Query", e))?;
    let next = out.last_evaluated_key.as_ref().and_then(encode);
    Ok((out.items.unwrap_or_default(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_partition() {
        let key: Item = [
            (
                "pk".to_string(),
                AttributeValue::S("T#demo#LOG#whatsapp".into()),
            ),
            (
                "sk".to_string(),
                AttributeValue::S("2026-11-25T10:00:00.000Z#1".into()),
            ),
        ]
        .into();
        let cursor = encode(&key).unwrap();
        assert_eq!(decode(&cursor, "pk", "T#demo#LOG#whatsapp").unwrap(), key);
        assert!(decode(&cursor, "pk", "T#other#LOG#whatsapp").is_err());
        assert!(decode("not a cursor", "pk", "x").is_err());
    }
}
