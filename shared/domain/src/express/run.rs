//! One tenant's nightly poll: where it stands (the checkpoint) and what it found. Lists are
//! bounded so the run item stays small whatever the member count.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::member::ExpressList;
use crate::nightly::{Checkpointed, Lease};

/// Entries each list of the report keeps; the counts go on past it.
pub const LISTED: usize = 25;
/// Lists and campaigns a run keeps in its checkpoint (an account has a handful).
pub const MAX_LISTS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PollPhase {
    /// The account's lists.
    Lists,
    /// Each list's members, page by page: consent changes onto the cards.
    Members,
    /// Campaigns and their states.
    Campaigns,
    /// Each campaign still reporting: per-person results onto the cards.
    Reports,
    Done,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollReport {
    pub lists: u64,
    pub members_read: u64,
    /// Members whose address no CRM card carries.
    pub members_not_in_crm: u64,
    pub consents_set: u64,
    pub consents_onay: u64,
    pub consents_ret: u64,
    pub campaigns: u64,
    pub campaigns_reported: u64,
    pub report_rows: u64,
    pub entries_written: u64,
    pub skipped: u64,
    pub problems_listed: Vec<Problem>,
    #[serde(default)]
    pub phase_ms: BTreeMap<PollPhase, u64>,
}

impl PollReport {
    pub fn problem(&mut self, problem: Problem) {
        self.skipped += 1;
        if self.problems_listed.len() < LISTED {
            self.problems_listed.push(problem);
        }
    }
}

/// The run item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRun {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub phase: PollPhase,
    /// The account's lists (the tenant's choice of them), read in the first phase.
    #[serde(default)]
    pub lists: Vec<ExpressList>,
    /// Campaigns whose reports this run reads.
    #[serde(default)]
    pub reporting: Vec<String>,
    /// Which list (Members) or campaign (Reports) the run is in.
    pub index: usize,
    /// The next page of that list (from 1).
    pub page: u32,
    pub report: PollReport,
    /// Set when the account needs its owner (no active sending package): the run stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_action: Option<String>,
    #[serde(flatten)]
    pub lease: Lease,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl PollRun {
    pub fn new(run_id: String, now: DateTime<Utc>, lease: Lease) -> Self {
        PollRun {
            run_id,
            started_at: now,
            phase: PollPhase::Lists,
            lists: vec![],
            reporting: vec![],
            index: 0,
            page: 1,
            report: PollReport::default(),
            needs_action: None,
            lease,
            finished_at: None,
        }
    }

    pub fn advance(&mut self) {
        self.phase = match self.phase {
            PollPhase::Lists => PollPhase::Members,
            PollPhase::Members => PollPhase::Campaigns,
            PollPhase::Campaigns => PollPhase::Reports,
            PollPhase::Reports | PollPhase::Done => PollPhase::Done,
        };
        self.index = 0;
        self.page = 1;
    }

    /// Past a page; `more` says whether the list or report has pages after it.
    pub fn next_page(&mut self, more: bool) {
        if more {
            self.page += 1;
        } else {
            self.index += 1;
            self.page = 1;
        }
    }
}

impl Checkpointed for PollRun {
    type Phase = PollPhase;
    fn lease(&self) -> &Lease {
        &self.lease
    }
    fn lease_mut(&mut self) -> &mut Lease {
        &mut self.lease
    }
    fn phase(&self) -> PollPhase {
        self.phase
    }
    fn is_done(&self) -> bool {
        self.phase == PollPhase::Done
    }
    fn finish(&mut self, at: DateTime<Utc>) {
        self.finished_at = Some(at);
    }
}
