//! The in-memory CRM's stores for the PBX call desk, InsurUp policies and Karel links, with
//! the same semantics as the DynamoDB adapters (conditional writes, counters, leases).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, MemoryCrm};
use crate::error::PortError;
use crate::page::{Page, PageRequest};
use crate::party::IdentityKey;
use crate::ports::*;
use crate::tenant::TenantId;
use crate::timeline::TimelineEntry;

#[async_trait]
impl CallRepository for MemoryCrm {
    async fn record_call(
        &self,
        tenant: &TenantId,
        write: &crate::pbx::call::CallWrite,
    ) -> Result<crate::pbx::call::CallWriteOutcome, PortError> {
        use crate::pbx::call::CallWriteOutcome;
        let mut state = lock(&self.0);
        let key = (
            tenant.clone(),
            format!("{}#{}", write.record.call_id, write.record.event_key),
        );
        if let Some(stored) = state.calls.get(&key) {
            return Ok(CallWriteOutcome::Duplicate(stored.clone()));
        }
        let mut write = write.clone();
        if let Some(lead) = &write.lead {
            if lead.phones.iter().any(|p| {
                state
                    .claims
                    .contains_key(&(tenant.clone(), IdentityKey::Phone(p.clone()).key()))
            }) {
                return Ok(CallWriteOutcome::IdentityTaken);
            }
        }
        if let Some(opened) = &write.opened {
            let counter = state
                .counters
                .entry((tenant.clone(), opened.kind().as_str()))
                .or_default();
            *counter += 1;
            let number = *counter;
            write.numbered(number);
        }
        if let Some(lead) = &write.lead {
            for phone in &lead.phones {
                let at = (tenant.clone(), IdentityKey::Phone(phone.clone()).key());
                state.claims.insert(at.clone(), lead.card_id.clone());
                state.identities.entry(at).or_default().push(lead.as_ref());
            }
            state
                .cards
                .insert((tenant.clone(), lead.card_id.clone()), lead.clone());
        }
        if let Some(entry) = &write.entry {
            state.timeline.push((tenant.clone(), entry.clone()));
            if let Some(touch) = &write.touch {
                let card = state
                    .cards
                    .get_mut(&(tenant.clone(), entry.card_id.clone()));
                if let Some(lead) = card.and_then(|c| c.lead.as_mut()) {
                    if lead.last_touch.at <= touch.at {
                        lead.last_touch = touch.clone();
                    }
                }
            }
        }
        if let Some(opened) = &write.opened {
            state.opened.push((tenant.clone(), opened.clone()));
        }
        state.calls.insert(key, write.record.clone());
        Ok(CallWriteOutcome::Applied(write.record))
    }

    async fn call_event(
        &self,
        tenant: &TenantId,
        call_id: &str,
        event_key: &str,
    ) -> Result<Option<crate::pbx::call::CallRecord>, PortError> {
        Ok(lock(&self.0)
            .calls
            .get(&(tenant.clone(), format!("{call_id}#{event_key}")))
            .cloned())
    }

    async fn call_queue(
        &self,
        tenant: &TenantId,
        agent: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<crate::pbx::call::CallRecord>, PortError> {
        let mut calls: Vec<_> = lock(&self.0)
            .calls
            .iter()
            .filter(|((t, _), r)| {
                t == tenant && (agent.is_none() || r.agent_key().as_deref() == agent)
            })
            .map(|(_, r)| r.clone())
            .collect();
        calls.sort_by_key(|c| std::cmp::Reverse(c.occurred_at));
        calls.truncate(page.size());
        Ok(Page::last(calls))
    }

    async fn ensure_entry(
        &self,
        tenant: &TenantId,
        entry: &TimelineEntry,
    ) -> Result<(), PortError> {
        let mut state = lock(&self.0);
        if !state
            .timeline
            .iter()
            .any(|(t, e)| t == tenant && e.entry_id == entry.entry_id && e.card_id == entry.card_id)
        {
            state.timeline.push((tenant.clone(), entry.clone()));
        }
        Ok(())
    }

    async fn opened_on(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<crate::pbx::call::Opened>, PortError> {
        Ok(lock(&self.0)
            .opened
            .iter()
            .filter(|(t, o)| t == tenant && o.card_id() == card_id)
            .map(|(_, o)| o.clone())
            .collect())
    }
}

#[async_trait]
impl PolicyRepository for MemoryCrm {
    async fn record_policy_event(
        &self,
        tenant: &TenantId,
        write: &crate::insurup::policy::PolicyWrite,
    ) -> Result<WriteOutcome, PortError> {
        let mut state = lock(&self.0);
        let key = (
            tenant.clone(),
            write.event.policy_id.clone(),
            write.event.endorsement_number,
        );
        if state.policy_events.contains_key(&key) {
            return Ok(WriteOutcome::Duplicate);
        }
        state.policy_events.insert(key, write.event.clone());
        state.timeline.push((tenant.clone(), write.entry.clone()));
        let pointer = (
            tenant.clone(),
            write.event.card_id.clone(),
            write.event.policy_id.clone(),
        );
        if !state.card_policies.contains(&pointer) {
            state.card_policies.push(pointer);
        }
        Ok(WriteOutcome::Applied)
    }

    async fn policy(
        &self,
        tenant: &TenantId,
        policy_id: &str,
    ) -> Result<Option<crate::insurup::policy::Policy>, PortError> {
        let events = lock(&self.0)
            .policy_events
            .iter()
            .filter(|((t, p, _), _)| t == tenant && p == policy_id)
            .map(|(_, e)| e.clone())
            .collect();
        Ok(crate::insurup::policy::Policy::from_events(events))
    }

    async fn policies_of(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<String>, PortError> {
        Ok(lock(&self.0)
            .card_policies
            .iter()
            .filter(|(t, c, _)| t == tenant && c == card_id)
            .map(|(_, _, p)| p.clone())
            .collect())
    }

    async fn link(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
        card_id: &str,
    ) -> Result<(), PortError> {
        lock(&self.0).links.insert(
            (tenant.clone(), format!("{kind}#{id}")),
            card_id.to_string(),
        );
        Ok(())
    }

    async fn linked(
        &self,
        tenant: &TenantId,
        kind: &str,
        id: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(lock(&self.0)
            .links
            .get(&(tenant.clone(), format!("{kind}#{id}")))
            .cloned())
    }
}

#[async_trait]
impl crate::karel::worker::KarelLinks for MemoryCrm {
    async fn link(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
    ) -> Result<Option<crate::karel::worker::KarelLink>, PortError> {
        Ok(lock(&self.0)
            .karel
            .get(&(tenant.clone(), opportunity_id.to_string()))
            .cloned())
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        link: &crate::karel::worker::KarelLink,
    ) -> Result<bool, PortError> {
        let mut state = lock(&self.0);
        let key = (tenant.clone(), link.opportunity_id.clone());
        if state.karel.contains_key(&key) {
            return Ok(false);
        }
        state.karel.insert(key, link.clone());
        Ok(true)
    }

    async fn save(
        &self,
        tenant: &TenantId,
        link: &crate::karel::worker::KarelLink,
    ) -> Result<bool, PortError> {
        use crate::karel::worker::LinkState;
        let mut state = lock(&self.0);
        let key = (tenant.clone(), link.opportunity_id.clone());
        let newer = match state.karel.get(&key) {
            None => true,
            Some(stored) => stored.state == LinkState::Creating || stored.version < link.version,
        };
        if newer {
            state.karel_leases.remove(&key);
            state.karel.insert(key, link.clone());
        }
        Ok(newer)
    }

    async fn lease(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut state = lock(&self.0);
        let key = (tenant.clone(), opportunity_id.to_string());
        if !state.karel.contains_key(&key) {
            return Ok(false);
        }
        let now = until - chrono::Duration::seconds(crate::karel::worker::LEASE_SECONDS);
        if state.karel_leases.get(&key).is_some_and(|held| *held > now) {
            return Ok(false);
        }
        state.karel_leases.insert(key, until);
        Ok(true)
    }

    async fn unlease(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError> {
        lock(&self.0)
            .karel_leases
            .remove(&(tenant.clone(), opportunity_id.to_string()));
        Ok(())
    }

    async fn release(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError> {
        lock(&self.0)
            .karel
            .remove(&(tenant.clone(), opportunity_id.to_string()));
        Ok(())
    }
}
