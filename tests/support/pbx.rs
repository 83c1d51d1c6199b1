//! `pbx-call` wired for tests: a tenant's PBX token and agent mapping, the function's app, and
//! a call desk whose writes wait until several calls got there (concurrency tests).

use std::sync::Arc;

use async_trait::async_trait;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_domain::error::PortError;
use onecrm_domain::ingress::{IngressPorts, NoQueue};
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::pbx::call::{CallRecord, CallWrite, CallWriteOutcome, Opened};
use onecrm_domain::pbx::desk::CallDesk;
use onecrm_domain::pbx::webhook::PbxCallWebhook;
use onecrm_domain::ports::{CallRepository, TenantDirectory};
use onecrm_domain::tenant::{PbxSettings, TenantId, TenantRoute};

use crate::{unique, Stack, TestTenant};

/// The agent the samples name (`agentId`/`extension` 911) maps to this user.
pub const PBX_AGENT_USER: &str = "user-agent-911";

impl Stack {
    /// The tenant's PBX settings (agent and extension 911 → [`PBX_AGENT_USER`], extension 912 →
    /// `user-agent-912`, `allow` as the source allow-list) and a fresh token (returned).
    pub async fn pbx(&self, tenant: &TestTenant, allow: &[&str]) -> (pbx_call::App, String) {
        let crm = self.crm();
        let mut config = TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        let mut settings = PbxSettings {
            vendor: "netgsm".into(),
            allowed_sources: allow.iter().map(|a| a.to_string()).collect(),
            agent_ids: Default::default(),
            extensions: Default::default(),
        };
        settings
            .agent_ids
            .insert("911".into(), PBX_AGENT_USER.into());
        settings
            .extensions
            .insert("911".into(), PBX_AGENT_USER.into());
        settings
            .extensions
            .insert("912".into(), "user-agent-912".into());
        config.integrations.pbx = Some(settings);
        let token = unique("pbx_");
        crm.put_tenant(&config, &[TenantRoute::pbx_token(&token)])
            .await
            .unwrap();
        (pbx_call::App::new(&self.wiring()).unwrap(), token)
    }

    /// The PBX webhook over `calls` (a barrier wrapper) instead of the plain store.
    pub fn pbx_webhook_with(&self, calls: Arc<dyn CallRepository>) -> PbxCallWebhook {
        let wiring = self.wiring();
        let ports = IngressPorts {
            tenants: wiring.crm.clone(),
            secrets: wiring.secrets(),
            queue: Arc::new(NoQueue),
            archive: wiring.archive().unwrap(),
            log: wiring.log.clone(),
        };
        let desk = CallDesk {
            tenants: wiring.crm.clone(),
            crm: wiring.crm.clone(),
            calls,
            clock: Arc::new(onecrm_adapters::system::SystemClock),
            ids: wiring.ids.clone(),
        };
        PbxCallWebhook::new(ports, desk, wiring.settings.log_retention_days)
    }
}

/// A call repository whose writes wait until `n` calls got there: all looked first (no stored
/// event, the same counter) before any wrote.
pub struct CallsInFlight {
    pub inner: Arc<CrmStore>,
    pub barrier: tokio::sync::Barrier,
}

#[async_trait]
impl CallRepository for CallsInFlight {
    async fn record_call(
        &self,
        t: &TenantId,
        w: &CallWrite,
    ) -> Result<CallWriteOutcome, PortError> {
        self.barrier.wait().await;
        self.inner.record_call(t, w).await
    }
    async fn call_event(
        &self,
        t: &TenantId,
        id: &str,
        key: &str,
    ) -> Result<Option<CallRecord>, PortError> {
        self.inner.call_event(t, id, key).await
    }
    async fn call_queue(
        &self,
        t: &TenantId,
        agent: Option<&str>,
        p: PageRequest,
    ) -> Result<Page<CallRecord>, PortError> {
        self.inner.call_queue(t, agent, p).await
    }
    async fn ensure_entry(
        &self,
        t: &TenantId,
        e: &onecrm_domain::timeline::TimelineEntry,
    ) -> Result<(), PortError> {
        self.inner.ensure_entry(t, e).await
    }
    async fn opened_on(&self, t: &TenantId, card: &str) -> Result<Vec<Opened>, PortError> {
        self.inner.opened_on(t, card).await
    }
}
