//! The poll's pages, one step at a time (the shared run loop calls `step`).

use std::collections::HashMap;
use std::time::Instant;

use async_trait::async_trait;

use super::campaign::{entries_for, Campaign, ReportRow};
use super::job::ExpressPoll;
use super::member::{consent_write, recheck_tonight, Member, MemberLink};
use super::ports::{ExpressError, ExpressPage, ExpressTarget};
use super::run::{PollPhase, PollReport, PollRun, Problem, MAX_LISTS};
use crate::consent::ConsentStatus;
use crate::error::{FieldError, PortError};
use crate::log::Integration;
use crate::nightly::{self, Steps};

/// Lists and campaigns per page (an account has few).
const SMALL_PAGE: u32 = 100;

pub(super) struct PollSteps<'a> {
    pub(super) poll: &'a ExpressPoll,
    pub(super) target: ExpressTarget<'a>,
}

#[async_trait]
impl Steps<PollRun> for PollSteps<'_> {
    async fn step(&mut self, run: &mut PollRun) -> Result<(), PortError> {
        let phase = run.phase;
        let began = Instant::now();
        let stepped = self.page(run).await;
        *run.report.phase_ms.entry(phase).or_default() += began.elapsed().as_millis() as u64;
        match stepped {
            Ok(()) => Ok(()),
            // Not something a retry mends: the run stops here, marked for the account's owner,
            // and finishes with one error record (no retry storm).
            Err(ExpressError::NoActivePackage(reason)) => {
                run.needs_action = Some(reason);
                run.phase = PollPhase::Done;
                Ok(())
            }
            Err(ExpressError::Port(e)) => Err(e),
        }
    }
}

impl PollSteps<'_> {
    fn page_size(&self) -> u32 {
        self.target.settings.page_size.clamp(1, 1000)
    }

    async fn page(&self, run: &mut PollRun) -> Result<(), ExpressError> {
        let api = &self.poll.api;
        match run.phase {
            PollPhase::Lists => {
                let page = api.lists(self.target, run.page, SMALL_PAGE).await?;
                let wanted = &self.target.settings.list_ids;
                for list in self
                    .readable(&mut run.report, "express.list.read", page.records)
                    .await
                {
                    if (wanted.is_empty() || wanted.contains(&list.id))
                        && run.lists.len() < MAX_LISTS
                    {
                        run.report.lists += 1;
                        run.lists.push(list);
                    }
                }
                match page.more {
                    true => run.page += 1,
                    false => run.advance(),
                }
            }
            PollPhase::Members => {
                let Some(list) = run.lists.get(run.index).cloned() else {
                    run.advance();
                    return Ok(());
                };
                let page = api
                    .members(self.target, &list.id, run.page, self.page_size())
                    .await?;
                let more = page.more;
                self.members(run, page).await?;
                run.next_page(more);
            }
            PollPhase::Campaigns => {
                let page = api.campaigns(self.target, run.page, SMALL_PAGE).await?;
                let more = page.more;
                self.campaigns(run, page).await?;
                match more {
                    true => run.page += 1,
                    false => run.advance(),
                }
            }
            PollPhase::Reports => {
                let Some(id) = run.reporting.get(run.index).cloned() else {
                    run.advance();
                    return Ok(());
                };
                self.report_page(run, &id).await?;
            }
            PollPhase::Done => {}
        }
        Ok(())
    }

    /// The records that read; each one that does not is skipped with its error record.
    async fn readable<T>(
        &self,
        report: &mut PollReport,
        operation: &str,
        records: Vec<Result<T, Vec<FieldError>>>,
    ) -> Vec<T> {
        let mut read = Vec::with_capacity(records.len());
        for record in records {
            match record {
                Ok(r) => read.push(r),
                Err(errors) => {
                    nightly::log_skipped(
                        &self.poll.log,
                        self.target.tenant,
                        Integration::Express,
                        self.target.trace,
                        operation,
                        &errors,
                    )
                    .await;
                    for e in errors {
                        report.problem(Problem {
                            field: e.field,
                            code: e.code,
                            message: e.message,
                        });
                    }
                }
            }
        }
        read
    }

    /// The stored links of these members, and the cards of the addresses not linked to any.
    async fn links_and_cards(
        &self,
        members: impl Iterator<Item = (&String, &String)> + Clone,
    ) -> Result<(HashMap<String, MemberLink>, HashMap<String, Vec<String>>), PortError> {
        let tenant = self.target.tenant;
        let store = &self.poll.store;
        let ids: Vec<String> = members.clone().map(|(id, _)| id.clone()).collect();
        let links = store.links(tenant, &ids).await?;
        // New members' addresses are looked up; those no card carried are looked up again once
        // a week (a card may have come since).
        let now = self.poll.log.clock().now();
        let mut emails: Vec<String> = members
            .filter(|(id, _)| match links.get(*id) {
                None => true,
                Some(link) => link.card_ids.is_empty() && recheck_tonight(id, now),
            })
            .map(|(_, email)| email.clone())
            .collect();
        emails.sort();
        emails.dedup();
        let cards = store.cards_by_email(tenant, &emails).await?;
        Ok((links, cards))
    }

    async fn members(
        &self,
        run: &mut PollRun,
        page: ExpressPage<Member>,
    ) -> Result<(), ExpressError> {
        let members = self
            .readable(&mut run.report, "express.member.read", page.records)
            .await;
        run.report.members_read += members.len() as u64;
        let (links, cards) = self
            .links_and_cards(members.iter().map(|m| (&m.member_id, &m.email)))
            .await?;
        let now = self.poll.log.clock().now();
        let mut writes = Vec::new();
        for member in &members {
            let stored = links.get(&member.member_id);
            let card_ids = match cards.get(&member.email) {
                Some(found) => found.clone(),
                None => stored.map(|l| l.card_ids.clone()).unwrap_or_default(),
            };
            if card_ids.is_empty() {
                run.report.members_not_in_crm += 1;
            }
            let trace = self.target.trace.as_str();
            if let Some(write) = consent_write(member, stored, card_ids, now, trace) {
                if !write.records.is_empty() {
                    run.report.consents_set += write.records.len() as u64;
                    match write.link.consent.status {
                        ConsentStatus::Onay => run.report.consents_onay += 1,
                        ConsentStatus::Ret => run.report.consents_ret += 1,
                    }
                }
                run.report.entries_written += write.entries.len() as u64;
                writes.push(write);
            }
        }
        self.poll
            .store
            .put_consents(self.target.tenant, &writes)
            .await?;
        Ok(())
    }

    /// Campaigns stored with their states; those still reporting queued for the next phase.
    async fn campaigns(
        &self,
        run: &mut PollRun,
        page: ExpressPage<Campaign>,
    ) -> Result<(), ExpressError> {
        let mut campaigns = self
            .readable(&mut run.report, "express.campaign.read", page.records)
            .await;
        run.report.campaigns += campaigns.len() as u64;
        let ids: Vec<String> = campaigns.iter().map(|c| c.campaign_id.clone()).collect();
        let stored = self.poll.store.campaigns(self.target.tenant, &ids).await?;
        for campaign in &mut campaigns {
            if let Some(known) = stored.get(&campaign.campaign_id) {
                campaign.report_final = known.report_final;
                campaign.totals = known.totals.clone();
            }
            if campaign.needs_report() && run.reporting.len() < MAX_LISTS {
                run.reporting.push(campaign.campaign_id.clone());
            }
        }
        self.poll
            .store
            .put_campaigns(self.target.tenant, &campaigns)
            .await?;
        Ok(())
    }

    /// One page of a campaign's detailed report onto the cards; after its last page the
    /// campaign's totals, and whether its report is final now.
    async fn report_page(&self, run: &mut PollRun, campaign_id: &str) -> Result<(), ExpressError> {
        let tenant = self.target.tenant;
        let store = &self.poll.store;
        let ids = [campaign_id.to_string()];
        let Some(mut campaign) = store.campaigns(tenant, &ids).await?.remove(campaign_id) else {
            run.next_page(false);
            return Ok(());
        };
        let page = self
            .poll
            .api
            .report_rows(self.target, campaign_id, run.page, self.page_size())
            .await?;
        let more = page.more;
        let rows: Vec<ReportRow> = self
            .readable(&mut run.report, "express.report.read", page.records)
            .await;
        run.report.report_rows += rows.len() as u64;
        let (links, cards) = self
            .links_and_cards(rows.iter().map(|r| (&r.member_id, &r.email)))
            .await?;
        let trace = self.target.trace.as_str();
        let mut entries = Vec::new();
        for row in &rows {
            let on = cards
                .get(&row.email)
                .or_else(|| links.get(&row.member_id).map(|l| &l.card_ids));
            for card in on.into_iter().flatten() {
                entries.extend(entries_for(&campaign, row, card, trace));
            }
        }
        run.report.entries_written += store.put_new_entries(tenant, &entries).await?;
        if !more {
            campaign.totals = Some(
                self.poll
                    .api
                    .campaign_totals(self.target, campaign_id)
                    .await?,
            );
            campaign.report_final = campaign.report_is_final(self.poll.log.clock().now());
            store.put_campaigns(tenant, &[campaign]).await?;
            run.report.campaigns_reported += 1;
        }
        run.next_page(more);
        Ok(())
    }
}
