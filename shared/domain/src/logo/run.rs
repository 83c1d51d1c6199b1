//! One tenant's sync run: where it stands (the checkpoint a cut-off run resumes from), what it
//! did, and the reconciliation report it leaves. Lists are bounded, so the checkpoint stays a
//! few KB however many records the run reads.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::arp::Winner;
use crate::nightly::{Checkpointed, Lease};

/// Entries each list of the report keeps; the counts go on past it.
pub const LISTED: usize = 25;

/// The steps of a run, in order. Each reads Logo page by page; the checkpoint says which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Cari changed since the last run → CRM customer cards.
    Customers,
    /// CRM customers without a Logo code → new cari in Logo, their codes back on the cards.
    CreateInLogo,
    /// Sales invoices changed since the last run → the customers' cards.
    Invoices,
    /// Material cards and their stock on hand → CRM product cards.
    Stock,
    /// Every cari against the CRM.
    CheckCustomers,
    /// The last 30 days' invoices of both sides, day by day.
    CheckInvoices,
    /// Every product's stock against the CRM's.
    CheckStock,
    Done,
}

/// A record skipped with its reason (naming the record and field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub logo_code: String,
    pub card_id: String,
    pub winner: String,
    pub logo_changed_at: DateTime<Utc>,
    pub crm_changed_at: DateTime<Utc>,
}

impl Conflict {
    pub fn new(
        logo_code: &str,
        card_id: &str,
        winner: Winner,
        logo_changed_at: DateTime<Utc>,
        crm_changed_at: DateTime<Utc>,
    ) -> Self {
        Conflict {
            logo_code: logo_code.into(),
            card_id: card_id.into(),
            winner: match winner {
                Winner::Logo => "logo".into(),
                Winner::Crm => "crm".into(),
            },
            logo_changed_at,
            crm_changed_at,
        }
    }
}

/// Records read, written and skipped by one step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

/// One day of invoices on both sides (count and gross, cancelled ones left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub logo_count: u64,
    pub logo_gross: Decimal,
    pub crm_count: u64,
    pub crm_gross: Decimal,
}

impl DayTotals {
    pub fn matches(&self) -> bool {
        self.logo_count == self.crm_count
            && self.logo_gross.round_dp(2) == self.crm_gross.round_dp(2)
    }
}

/// An invoice the two sides disagree on: missing in the CRM (`crm_gross` none), another
/// amount, date or cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDifference {
    pub number: String,
    pub logo_gross: Decimal,
    pub crm_gross: Option<Decimal>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockDifference {
    pub code: String,
    pub logo: Decimal,
    /// `None`: the CRM has no such product.
    pub crm: Option<Decimal>,
}

/// Whether the two sides agree after the run, and where they do not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub logo_customers: u64,
    pub logo_customers_in_crm: u64,
    /// Cari codes Logo has and no CRM card carries (skipped bad records among them).
    pub missing_in_crm: Vec<String>,
    /// CRM customers (with a tax number) that have no Logo code.
    pub crm_only: u64,
    pub crm_only_cards: Vec<String>,
    pub invoices_from: Option<NaiveDate>,
    pub invoice_days: BTreeMap<NaiveDate, DayTotals>,
    /// Logo's invoices of the period the CRM has differently or not at all.
    #[serde(default)]
    pub invoice_differences: u64,
    #[serde(default)]
    pub invoices_listed: Vec<InvoiceDifference>,
    pub products_checked: u64,
    pub stock_differences: u64,
    pub stock_listed: Vec<StockDifference>,
}

impl Reconciliation {
    pub fn invoice_totals(&self) -> DayTotals {
        self.invoice_days
            .values()
            .fold(DayTotals::default(), |mut all, day| {
                all.logo_count += day.logo_count;
                all.logo_gross += day.logo_gross;
                all.crm_count += day.crm_count;
                all.crm_gross += day.crm_gross;
                all
            })
    }

    /// Days whose invoices differ.
    pub fn invoice_mismatches(&self) -> Vec<(NaiveDate, &DayTotals)> {
        self.invoice_days
            .iter()
            .filter(|(_, d)| !d.matches())
            .map(|(day, d)| (*day, d))
            .collect()
    }

    pub fn matches(&self) -> bool {
        self.logo_customers == self.logo_customers_in_crm
            && self.crm_only == 0
            && self.invoice_differences == 0
            && self.invoice_mismatches().is_empty()
            && self.stock_differences == 0
    }

    /// Logo's invoices of a page against the CRM's copies (by number), day by day on Logo's
    /// date: totals to the kuruş, and each invoice that differs.
    pub fn compare_invoices(
        &mut self,
        logo: &[crate::logo::invoice::LogoInvoice],
        crm: &std::collections::HashMap<String, crate::logo::invoice::InvoiceSummary>,
    ) {
        for invoice in logo {
            let ours = crm.get(&invoice.number);
            let day = self.invoice_days.entry(invoice.date).or_default();
            if !invoice.cancelled {
                day.logo_count += 1;
                day.logo_gross += invoice.gross;
            }
            if let Some(ours) = ours.filter(|o| !o.cancelled) {
                day.crm_count += 1;
                day.crm_gross += ours.gross;
            }
            let reason = match ours {
                None => Some("missing in the CRM"),
                Some(o) if o.gross != invoice.gross => Some("another gross amount"),
                Some(o) if o.cancelled != invoice.cancelled => Some("cancelled on one side only"),
                Some(o) if o.date != invoice.date => Some("another date"),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                self.invoice_differences += 1;
                if self.invoices_listed.len() < LISTED {
                    self.invoices_listed.push(InvoiceDifference {
                        number: invoice.number.clone(),
                        logo_gross: invoice.gross,
                        crm_gross: ours.map(|o| o.gross),
                        reason: reason.into(),
                    });
                }
            }
        }
    }
}

/// What a run did and found: stored when it finishes, retrievable with the admin CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub customers: Counts,
    pub created_in_logo: Counts,
    pub invoices: Counts,
    pub products: Counts,
    pub conflicts: u64,
    pub conflicts_listed: Vec<Conflict>,
    pub problems: u64,
    pub problems_listed: Vec<Problem>,
    pub reconciliation: Reconciliation,
    /// Time spent in each phase, over every invocation of the run.
    #[serde(default)]
    pub phase_ms: BTreeMap<Phase, u64>,
}

impl SyncReport {
    pub fn problem(&mut self, problem: Problem) {
        self.problems += 1;
        if self.problems_listed.len() < LISTED {
            self.problems_listed.push(problem);
        }
    }

    pub fn conflict(&mut self, conflict: Conflict) {
        self.conflicts += 1;
        if self.conflicts_listed.len() < LISTED {
            self.conflicts_listed.push(conflict);
        }
    }
}

/// The run item: the checkpoint, the lease, and the watermark of the last finished run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRun {
    pub run_id: String,
    pub full: bool,
    /// Records changed after this are read (`None`: all of them).
    pub since: Option<DateTime<Utc>>,
    /// The last finished run's start, for the both-sides-changed rule (also in a full run):
    /// the sync writes a card as of its run's start, so a later card change is the CRM's.
    pub last_run: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub phase: Phase,
    /// The next Logo page's offset in this phase.
    pub offset: u64,
    /// The next CRM page's cursor in this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    pub report: SyncReport,
    #[serde(flatten)]
    pub lease: Lease,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Checkpointed for SyncRun {
    type Phase = Phase;
    fn lease(&self) -> &Lease {
        &self.lease
    }
    fn lease_mut(&mut self) -> &mut Lease {
        &mut self.lease
    }
    fn phase(&self) -> Phase {
        self.phase
    }
    fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }
    fn finish(&mut self, at: DateTime<Utc>) {
        self.finished_at = Some(at);
    }
}

impl SyncRun {
    /// The step after `phase`.
    pub fn advance(&mut self) {
        self.phase = match self.phase {
            Phase::Customers => Phase::CreateInLogo,
            Phase::CreateInLogo => Phase::Invoices,
            Phase::Invoices => Phase::Stock,
            Phase::Stock => Phase::CheckCustomers,
            Phase::CheckCustomers => Phase::CheckInvoices,
            Phase::CheckInvoices => Phase::CheckStock,
            Phase::CheckStock | Phase::Done => Phase::Done,
        };
        self.offset = 0;
        self.cursor = None;
    }

    /// Where the next run starts reading: this run's start, less a margin for the clock of
    /// Logo's server (records read twice are written to the same keys: harmless).
    pub fn watermark(&self) -> DateTime<Utc> {
        self.started_at - chrono::Duration::minutes(10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_stay_bounded_while_counts_go_on() {
        let mut report = SyncReport::default();
        for n in 0..100 {
            report.problem(Problem {
                field: format!("Arps[{n}].TAX_ID"),
                code: "invalid_vkn".into(),
                message: "checksum".into(),
            });
        }
        assert_eq!(
            (report.problems, report.problems_listed.len()),
            (100, LISTED)
        );
    }

    #[test]
    fn a_run_goes_through_every_phase_once() {
        let now = Utc::now();
        let mut run = SyncRun {
            run_id: "r".into(),
            full: false,
            since: None,
            last_run: None,
            started_at: now,
            phase: Phase::Customers,
            offset: 300,
            cursor: Some("c".into()),
            report: SyncReport::default(),
            lease: Lease::new("o".into(), now, 1),
            finished_at: None,
        };
        let mut seen = vec![run.phase];
        while run.phase != Phase::Done {
            run.advance();
            assert_eq!((run.offset, run.cursor.as_deref()), (0, None));
            seen.push(run.phase);
        }
        assert_eq!(seen.len(), 8);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn invoices_match_to_the_kurus_day_by_day() {
        let mut check = Reconciliation::default();
        let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        check.invoice_days.insert(
            day,
            DayTotals {
                logo_count: 2,
                logo_gross: "1500.60".parse().unwrap(),
                crm_count: 2,
                crm_gross: "1500.600".parse().unwrap(),
            },
        );
        assert!(check.matches());
        check.invoice_days.get_mut(&day).unwrap().crm_gross = "1500.59".parse().unwrap();
        assert_eq!(check.invoice_mismatches().len(), 1);
        assert!(!check.matches());
    }
}
