//! Policies on customer cards. A policy's life is kept as its events, one per endorsement
//! number (0: issued; n: the n-th endorsement, a cancellation among them), so the policy reads
//! in order whatever order InsurUp delivered them in, and a redelivered event (under any
//! delivery id) is the same item: it lands once. The policy as the card shows it is the fold of
//! those events: the contract facts, the latest endorsement's premium and state.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::timeline::TimelineEntry;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyState {
    Active,
    Endorsed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyEventKind {
    Issued,
    Endorsed,
    Cancelled,
}

/// The facts a policy is issued with (`policy.created`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyContract {
    pub insurance_company: String,
    pub insurance_company_id: i64,
    /// InsurUp's product branch (KASKO, TRAFIK, DASK...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub renewal_number: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_id: Option<String>,
    pub insurup_customer_id: String,
}

/// One step of a policy's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyEvent {
    pub policy_id: String,
    /// 0 for the issue; InsurUp's `endorsementNumber` after.
    pub endorsement_number: i64,
    pub kind: PolicyEventKind,
    pub card_id: String,
    /// The insurance company's policy number.
    pub policy_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<PolicyContract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_premium: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_premium: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installment_number: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub trace_id: String,
}

/// The policy as the card shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub policy_id: String,
    pub card_id: String,
    pub policy_number: String,
    pub state: PolicyState,
    /// Known once `policy.created` arrived (an endorsement may come first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<PolicyContract>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_premium: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gross_premium: Option<Money>,
    /// The latest endorsement number applied (0: as issued).
    pub endorsement_number: i64,
    /// Its life in order: issued, endorsed..., cancelled.
    pub events: Vec<PolicyEvent>,
}

impl Policy {
    /// Folds a policy's events (any order) into what the card shows.
    pub fn from_events(mut events: Vec<PolicyEvent>) -> Option<Policy> {
        events.sort_by_key(|e| e.endorsement_number);
        let latest = events.last()?.clone();
        let issued = events.iter().find(|e| e.kind == PolicyEventKind::Issued);
        let state = if events.iter().any(|e| e.kind == PolicyEventKind::Cancelled) {
            PolicyState::Cancelled
        } else if latest.endorsement_number > 0 {
            PolicyState::Endorsed
        } else {
            PolicyState::Active
        };
        // The premium in force: the latest event that states one (a cancellation's refund is
        // negative and stays on its event, not on the policy).
        let in_force = events
            .iter()
            .rev()
            .find(|e| e.kind != PolicyEventKind::Cancelled && e.gross_premium.is_some());
        Some(Policy {
            policy_id: latest.policy_id.clone(),
            card_id: issued
                .map(|e| e.card_id.clone())
                .unwrap_or(latest.card_id.clone()),
            policy_number: latest.policy_number.clone(),
            state,
            contract: issued.and_then(|e| e.contract.clone()),
            net_premium: in_force.and_then(|e| e.net_premium.clone()),
            gross_premium: in_force.and_then(|e| e.gross_premium.clone()),
            endorsement_number: latest.endorsement_number,
            events,
        })
    }
}

/// One policy event with its timeline entry on the card, written all-or-nothing; the event item
/// is its own idempotency key.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyWrite {
    pub event: PolicyEvent,
    pub entry: TimelineEntry,
}
