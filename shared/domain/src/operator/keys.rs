//! Operator API keys: stored by the SHA-256 of the key (the key itself is shown once, when
//! made), each belonging to one tenant with the scopes it may use.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PortError;
use crate::tenant::TenantId;

/// What a key may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The integration log (masked) and events' paths.
    Logs,
    /// Full payloads from the raw event archive (each access is itself logged).
    Payloads,
    Leads,
    Cards,
    Calls,
    /// Send WhatsApp templates and texts.
    Send,
    /// Re-queue failed events.
    Replay,
}

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::Logs,
        Scope::Payloads,
        Scope::Leads,
        Scope::Cards,
        Scope::Calls,
        Scope::Send,
        Scope::Replay,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Logs => "logs",
            Scope::Payloads => "payloads",
            Scope::Leads => "leads",
            Scope::Cards => "cards",
            Scope::Calls => "calls",
            Scope::Send => "send",
            Scope::Replay => "replay",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorKey {
    pub tenant_id: TenantId,
    /// Who or what holds it ("log screen", "Ayşe").
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
}

impl OperatorKey {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// The hash a key is stored and found by.
pub fn key_hash(key: &str) -> String {
    crate::tenant::sha256_hex(key.trim())
}

#[async_trait]
pub trait OperatorKeys: Send + Sync {
    /// The key stored under this hash.
    async fn key(&self, hash: &str) -> Result<Option<OperatorKey>, PortError>;
    async fn put_key(&self, hash: &str, key: &OperatorKey) -> Result<(), PortError>;
}

/// What the operator API reads besides the log and the cards: the nightly jobs' reports and
/// runs, and the raw event archive.
#[async_trait]
pub trait OperatorReads: Send + Sync {
    /// The last finished Logo runs with their reconciliation reports, newest first.
    async fn logo_reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<crate::logo::run::SyncRun>, PortError>;
    /// The last finished Express polls, newest first.
    async fn express_reports(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<crate::express::run::PollRun>, PortError>;
    /// A nightly job's stored run (in progress, or the last one), as JSON.
    async fn current_run(
        &self,
        tenant: &TenantId,
        integration: crate::log::Integration,
    ) -> Result<Option<serde_json::Value>, PortError>;
    /// A trace's delivery as received (unmasked): `(path, raw JSON)` per unit.
    async fn delivery(
        &self,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(String, String)>, PortError>;
}
