//! Operator API keys (`OPKEY#<sha256 of the key>` / `OPKEY`): found by the hash of the key a
//! request brings, like routes; the key itself is never stored.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::operator::keys::{OperatorKey, OperatorKeys};

use super::*;

const SK: &str = "OPKEY";

#[async_trait]
impl OperatorKeys for CrmStore {
    async fn key(&self, hash: &str) -> Result<Option<OperatorKey>, PortError> {
        self.get(keys::operator_key(hash), SK)
            .await?
            .map(from_item)
            .transpose()
    }

    async fn put_key(&self, hash: &str, key: &OperatorKey) -> Result<(), PortError> {
        let stored = item(
            key,
            "operator_key",
            &[("pk", keys::operator_key(hash)), ("sk", SK.into())],
        )?;
        self.put_item(stored).await
    }
}
