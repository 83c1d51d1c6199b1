//! The poll and the push with in-memory ports and a scripted Express: consent flips both
//! ways, two nights in a row, reports never doubled, a cut-off run, the package refusal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::campaign::{Campaign, CampaignStatus, CampaignTotals, Delivery, ReportRow};
use super::job::{ExpressPoll, PollJob, PollOutcome, NO_PACKAGE};
use super::member::{ConsentWrite, ExpressList, Member, MemberLink};
use super::ports::*;
use super::push::{member_of, ExpressPush, PushJob};
use super::run::PollRun;
use crate::consent::{ConsentRecord, ConsentStatus};
use crate::error::{FieldError, PortError};
use crate::log::{Integration, IntegrationLog, LogResult};
use crate::nightly::{lease, Runs};
use crate::party::Card;
use crate::tenant::{ExpressSettings, IntegrationSettings, TenantConfig, TenantId};
use crate::testing::*;
use crate::timeline::TimelineEntry;

const NOW: &str = "2026-11-26T23:30:00Z";

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap()
}

#[derive(Default)]
struct FakeExpress {
    members: Mutex<Vec<Member>>,
    rows: Vec<ReportRow>,
    no_package: Mutex<bool>,
    created: Mutex<Vec<MemberPush>>,
    updated: Mutex<Vec<(String, MemberPush)>>,
}

fn page<T: Clone>(all: &[T], page: u32, size: u32) -> ExpressPage<T> {
    let from = ((page - 1) * size) as usize;
    let records: Vec<_> = all
        .iter()
        .skip(from)
        .take(size as usize)
        .cloned()
        .map(Ok)
        .collect();
    ExpressPage {
        more: from + records.len() < all.len(),
        records,
    }
}

impl FakeExpress {
    fn refuse(&self) -> ExpressResult<()> {
        match *lock(&self.no_package) {
            true => Err(ExpressError::NoActivePackage(
                "Aktif paket bulunamadı".into(),
            )),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl ExpressApi for FakeExpress {
    async fn lists(
        &self,
        _: ExpressTarget<'_>,
        p: u32,
        s: u32,
    ) -> ExpressResult<ExpressPage<ExpressList>> {
        self.refuse()?;
        Ok(page(
            &[ExpressList {
                id: "L1".into(),
                name: "Müşteriler".into(),
            }],
            p,
            s,
        ))
    }
    async fn create_list(&self, _: ExpressTarget<'_>, name: &str) -> ExpressResult<ExpressList> {
        Ok(ExpressList {
            id: "L9".into(),
            name: name.into(),
        })
    }
    async fn rename_list(&self, _: ExpressTarget<'_>, _: &str, _: &str) -> ExpressResult<()> {
        Ok(())
    }
    async fn delete_list(&self, _: ExpressTarget<'_>, _: &str) -> ExpressResult<()> {
        Ok(())
    }
    async fn members(
        &self,
        _: ExpressTarget<'_>,
        _: &str,
        p: u32,
        s: u32,
    ) -> ExpressResult<ExpressPage<Member>> {
        self.refuse()?;
        let mut found = page(&lock(&self.members), p, s);
        if p == 1 {
            found.records.push(Err(vec![FieldError::new(
                "members[bad-1].email",
                "invalid_email",
                "not an e-mail address",
            )]));
        }
        Ok(found)
    }
    async fn member_by_email(
        &self,
        _: ExpressTarget<'_>,
        email: &str,
    ) -> ExpressResult<Option<Member>> {
        Ok(lock(&self.members)
            .iter()
            .find(|m| m.email == email)
            .cloned())
    }
    async fn create_member(
        &self,
        _: ExpressTarget<'_>,
        push: &MemberPush,
    ) -> ExpressResult<String> {
        self.refuse()?;
        lock(&self.created).push(push.clone());
        let id = format!("new-{}", lock(&self.created).len());
        lock(&self.members).push(Member {
            member_id: id.clone(),
            email: push.email.clone(),
            permission: true,
            unsubscribed: false,
            changed_at: None,
            source: None,
        });
        Ok(id)
    }
    async fn update_member(
        &self,
        _: ExpressTarget<'_>,
        id: &str,
        push: &MemberPush,
    ) -> ExpressResult<()> {
        lock(&self.updated).push((id.into(), push.clone()));
        Ok(())
    }
    async fn delete_member(&self, _: ExpressTarget<'_>, _: &str, _: &str) -> ExpressResult<()> {
        Ok(())
    }
    async fn campaigns(
        &self,
        _: ExpressTarget<'_>,
        p: u32,
        s: u32,
    ) -> ExpressResult<ExpressPage<Campaign>> {
        let sent = |id: &str, status| Campaign {
            campaign_id: id.into(),
            name: format!("Kampanya {id}"),
            subject: None,
            status,
            sent_at: Some("2026-11-25T07:00:00Z".parse().unwrap()),
            totals: None,
            report_final: false,
        };
        Ok(page(
            &[
                sent("C1", CampaignStatus::Sent),
                sent("C2", CampaignStatus::Draft),
            ],
            p,
            s,
        ))
    }
    async fn campaign_totals(
        &self,
        _: ExpressTarget<'_>,
        _: &str,
    ) -> ExpressResult<CampaignTotals> {
        Ok(CampaignTotals {
            sent: self.rows.len() as u64,
            ..CampaignTotals::default()
        })
    }
    async fn report_rows(
        &self,
        _: ExpressTarget<'_>,
        _: &str,
        p: u32,
        s: u32,
    ) -> ExpressResult<ExpressPage<ReportRow>> {
        Ok(page(&self.rows, p, s))
    }
}

#[derive(Default)]
struct MemoryExpressStore {
    links: Mutex<HashMap<String, MemberLink>>,
    /// Address → cards.
    cards: Mutex<HashMap<String, Vec<String>>>,
    consents: Mutex<Vec<(String, ConsentRecord)>>,
    entries: Mutex<HashMap<String, TimelineEntry>>,
    campaigns: Mutex<HashMap<String, Campaign>>,
    segments: Mutex<HashMap<String, ExpressList>>,
    reports: Mutex<Vec<PollRun>>,
}

#[async_trait]
impl ExpressStore for MemoryExpressStore {
    async fn links(
        &self,
        _: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, MemberLink>, PortError> {
        let links = lock(&self.links);
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), links.get(id)?.clone())))
            .collect())
    }
    async fn put_links(&self, _: &TenantId, links: &[MemberLink]) -> Result<(), PortError> {
        for l in links {
            lock(&self.links).insert(l.member_id.clone(), l.clone());
        }
        Ok(())
    }
    async fn cards_by_email(
        &self,
        _: &TenantId,
        emails: &[String],
    ) -> Result<HashMap<String, Vec<String>>, PortError> {
        let cards = lock(&self.cards);
        Ok(emails
            .iter()
            .filter_map(|e| Some((e.clone(), cards.get(e)?.clone())))
            .collect())
    }
    async fn put_consents(&self, t: &TenantId, writes: &[ConsentWrite]) -> Result<(), PortError> {
        for w in writes {
            lock(&self.consents).extend(w.records.iter().cloned());
            self.put_new_entries(t, &w.entries).await?;
            self.put_links(t, std::slice::from_ref(&w.link)).await?;
        }
        Ok(())
    }
    async fn email_consents(
        &self,
        _: &TenantId,
        card: &str,
    ) -> Result<Vec<ConsentRecord>, PortError> {
        Ok(lock(&self.consents)
            .iter()
            .filter(|(c, _)| c == card)
            .map(|(_, r)| r.clone())
            .collect())
    }
    async fn put_campaigns(&self, _: &TenantId, campaigns: &[Campaign]) -> Result<(), PortError> {
        for c in campaigns {
            lock(&self.campaigns).insert(c.campaign_id.clone(), c.clone());
        }
        Ok(())
    }
    async fn campaigns(
        &self,
        _: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, Campaign>, PortError> {
        let stored = lock(&self.campaigns);
        Ok(ids
            .iter()
            .filter_map(|id| Some((id.clone(), stored.get(id)?.clone())))
            .collect())
    }
    async fn put_new_entries(
        &self,
        _: &TenantId,
        entries: &[TimelineEntry],
    ) -> Result<u64, PortError> {
        let mut stored = lock(&self.entries);
        let mut new = 0;
        for e in entries {
            let key = format!("{}#{}", e.card_id, e.entry_id);
            if stored.insert(key, e.clone()).is_none() {
                new += 1;
            }
        }
        Ok(new)
    }
    async fn segment_list(
        &self,
        _: &TenantId,
        segment: &str,
    ) -> Result<Option<ExpressList>, PortError> {
        Ok(lock(&self.segments).get(segment).cloned())
    }
    async fn link_segment(
        &self,
        _: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<bool, PortError> {
        let mut segments = lock(&self.segments);
        if segments.contains_key(segment) {
            return Ok(false);
        }
        segments.insert(segment.into(), list.clone());
        Ok(true)
    }
    async fn relink_segment(
        &self,
        _: &TenantId,
        segment: &str,
        list: &ExpressList,
    ) -> Result<(), PortError> {
        lock(&self.segments).insert(segment.into(), list.clone());
        Ok(())
    }
    async fn unlink_segment(&self, _: &TenantId, segment: &str) -> Result<(), PortError> {
        lock(&self.segments).remove(segment);
        Ok(())
    }
    async fn save_report(&self, _: &TenantId, run: &PollRun) -> Result<(), PortError> {
        lock(&self.reports).push(run.clone());
        Ok(())
    }
    async fn reports(&self, _: &TenantId, limit: usize) -> Result<Vec<PollRun>, PortError> {
        Ok(lock(&self.reports)
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }
}

struct World {
    clock: Arc<FixedClock>,
    poll: ExpressPoll,
    api: Arc<FakeExpress>,
    store: Arc<MemoryExpressStore>,
    sink: Arc<MemoryLogSink>,
    tenant: TenantId,
}

fn member(i: usize) -> Member {
    Member {
        member_id: format!("m{i}"),
        email: format!("kisi{i}@ornek.com"),
        permission: true,
        unsubscribed: false,
        changed_at: Some("2026-11-01T08:00:00Z".parse().unwrap()),
        source: Some("HS_WEB".into()),
    }
}

fn world(members: usize) -> World {
    let tenant = TenantId::parse("acme").unwrap();
    let tenants = Arc::new(MemoryTenants::default());
    tenants.add(
        TenantConfig {
            tenant_id: tenant.clone(),
            name: "Acme".into(),
            default_owner: None,
            integrations: IntegrationSettings {
                express: Some(ExpressSettings {
                    list_ids: vec![],
                    iys_enabled: true,
                    page_size: 3,
                }),
                ..IntegrationSettings::default()
            },
            created_at: Utc::now(),
        },
        &[],
        None,
    );
    let store = Arc::new(MemoryExpressStore::default());
    for i in 0..members {
        // Every member but the last is on a card.
        if i + 1 < members {
            lock(&store.cards).insert(format!("kisi{i}@ornek.com"), vec![format!("card-{i}")]);
        }
    }
    let rows = (0..members)
        .map(|i| ReportRow {
            member_id: format!("m{i}"),
            email: format!("kisi{i}@ornek.com"),
            delivery: if i == 1 {
                Delivery::HardBounced
            } else {
                Delivery::Sent
            },
            sent_at: None,
            opened_at: (i == 0).then(|| "2026-11-25T09:00:00Z".parse().unwrap()),
            clicked_at: None,
        })
        .collect();
    let api = Arc::new(FakeExpress {
        members: Mutex::new((0..members).map(member).collect()),
        rows,
        ..FakeExpress::default()
    });
    let sink = Arc::new(MemoryLogSink::default());
    let clock = Arc::new(FixedClock::at(NOW));
    let log = IntegrationLog::new(
        sink.clone(),
        clock.clone(),
        Arc::new(SequentialIds::default()),
        30,
    );
    World {
        clock,
        poll: ExpressPoll {
            tenants,
            api: api.clone(),
            store: store.clone(),
            log,
            runs: Runs {
                store: Arc::new(MemoryRuns::default()),
                integration: Integration::Express,
                lease: lease(120),
            },
        },
        api,
        store,
        sink,
        tenant,
    }
}

fn job(w: &World, trace: &str) -> PollJob {
    PollJob {
        tenant_id: w.tenant.clone(),
        trace_id: trace.into(),
    }
}

fn later() -> Instant {
    Instant::now() + StdDuration::from_secs(3600)
}

async fn night(w: &World, trace: &str) -> PollRun {
    match w.poll.run(&job(w, trace), later()).await.unwrap() {
        PollOutcome::Finished(run) => *run,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn two_nights_in_a_row_the_second_changes_nothing() {
    let w = world(5);
    let first = night(&w, "t1").await;
    let r = &first.report;
    assert_eq!((r.lists, r.members_read, r.members_not_in_crm), (1, 5, 1));
    assert_eq!(
        (r.consents_set, r.consents_onay),
        (4, 4),
        "a consent per card on the CRM, all ONAY"
    );
    assert_eq!(r.skipped, 1, "the unreadable member is named and skipped");
    assert_eq!(
        (r.campaigns, r.campaigns_reported),
        (2, 1),
        "drafts have no report"
    );
    // Sent on 4 cards, one bounced, one opened: 4 + 1 entries.
    assert_eq!(r.entries_written, 5);
    let second = night(&w, "t2").await;
    let r = &second.report;
    assert_eq!((r.consents_set, r.entries_written), (0, 0), "{r:?}");
    assert_eq!(lock(&w.store.entries).len(), 5);
}

#[tokio::test]
async fn consent_flips_both_ways_land_once_each() {
    let w = world(3);
    night(&w, "t1").await;
    {
        let mut members = lock(&w.api.members);
        members[0].unsubscribed = true;
        members[0].changed_at = Some("2026-11-26T10:00:00Z".parse().unwrap());
        members[1].permission = false;
    }
    let r = night(&w, "t2").await.report;
    assert_eq!((r.consents_set, r.consents_ret), (2, 2));
    let consents = lock(&w.store.consents).clone();
    let last = |card: &str| {
        consents
            .iter()
            .rev()
            .find(|(c, _)| c == card)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(last("card-0").status, ConsentStatus::Ret);
    assert_eq!(last("card-1").status, ConsentStatus::Ret);
    let kinds: Vec<String> = lock(&w.store.entries)
        .values()
        .map(|e| e.kind.clone())
        .collect();
    assert!(kinds.contains(&"email_unsubscribed".to_string()));
    assert!(kinds.contains(&"email_consent_withdrawn".to_string()));
    lock(&w.api.members)[1].permission = true;
    let r = night(&w, "t3").await.report;
    assert_eq!((r.consents_set, r.consents_onay), (1, 1));
    assert_eq!(last_status(&w, "card-1"), ConsentStatus::Onay);
}

fn last_status(w: &World, card: &str) -> ConsentStatus {
    lock(&w.store.consents)
        .iter()
        .rev()
        .find(|(c, _)| c == card)
        .unwrap()
        .1
        .status
}

#[tokio::test]
async fn a_run_cut_every_page_resumes_and_counts_each_member_once() {
    let w = world(8);
    let mut invocations = 0;
    let run = loop {
        invocations += 1;
        match w.poll.run(&job(&w, "t1"), Instant::now()).await.unwrap() {
            PollOutcome::OutOfTime(_) => assert!(invocations < 40),
            PollOutcome::Finished(run) => break run,
            other => panic!("{other:?}"),
        }
    };
    assert!(invocations > 4, "{invocations}");
    assert_eq!(run.lease.invocations, invocations);
    assert_eq!((run.report.members_read, run.report.consents_set), (8, 7));
    assert_eq!(run.report.entries_written, 8);
}

#[tokio::test]
async fn no_active_package_ends_the_run_with_one_error_needing_action() {
    let w = world(3);
    *lock(&w.api.no_package) = true;
    let run = night(&w, "t1").await;
    assert!(run.needs_action.as_deref().unwrap().contains("paket"));
    let errors: Vec<_> = w
        .sink
        .records()
        .into_iter()
        .filter(|r| r.result == LogResult::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].error_code.as_deref(), Some(NO_PACKAGE));
    // The next night tries again, and goes through once a package is bought.
    *lock(&w.api.no_package) = false;
    let run = night(&w, "t2").await;
    assert!(run.needs_action.is_none());
    assert_eq!(run.report.members_read, 3);
}

#[tokio::test]
async fn push_sends_consenting_people_with_iys_fields_and_finds_lost_creates() {
    let w = world(1);
    let crm = Arc::new(MemoryCrm::default());
    let now: DateTime<Utc> = NOW.parse().unwrap();
    let mut ayse = Card::person_customer("c-ayse", "Ayşe Yılmaz", vec![], now);
    ayse.emails = vec!["ayse@ornek.com".into()];
    let mut no_mail = Card::person_customer("c-none", "Ali Kaya", vec![], now);
    no_mail.emails = vec![];
    let mut no_consent = Card::person_customer("c-ret", "Veli Can", vec![], now);
    no_consent.emails = vec!["veli@ornek.com".into()];
    for card in [&ayse, &no_mail, &no_consent] {
        crm.upsert_card(&w.tenant, card, &[]);
    }
    lock(&w.store.consents).push((
        "c-ayse".into(),
        consent("ayse@ornek.com", ConsentStatus::Onay, now),
    ));
    lock(&w.store.consents).push((
        "c-ret".into(),
        consent("veli@ornek.com", ConsentStatus::Ret, now),
    ));
    let push = ExpressPush {
        api: w.api.clone(),
        store: w.store.clone(),
        crm,
    };
    let settings = ExpressSettings {
        list_ids: vec![],
        iys_enabled: true,
        page_size: 100,
    };
    let trace = crate::envelope::TraceId::new("t".to_string());
    let target = ExpressTarget {
        tenant: &w.tenant,
        settings: &settings,
        trace: &trace,
    };
    let job = PushJob {
        tenant_id: w.tenant.clone(),
        trace_id: "t".into(),
        segment: "vip".into(),
        list_name: Some("VIP Müşteriler".into()),
        card_ids: vec!["c-ayse".into(), "c-none".into(), "c-ret".into()],
        remove_card_ids: vec![],
    };
    let report = push.push(target, &job).await.unwrap();
    assert_eq!((report.created, report.updated), (1, 0));
    let refused: Vec<&str> = report.refused.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(refused, ["missing", "iys_fields_missing"]);
    let created = lock(&w.api.created)[0].clone();
    assert_eq!(created.list_id, "L9");
    let iys = created.iys.unwrap();
    assert_eq!((iys.source.as_str(), iys.consent_date), ("HS_WEB", now));
    assert_eq!(
        (created.first_name.as_deref(), created.last_name.as_deref()),
        (Some("Ayşe"), Some("Yılmaz"))
    );
    // Again (the answer lost, the job retried): found by its address, updated, list kept.
    let report = push.push(target, &job).await.unwrap();
    assert_eq!((report.created, report.updated), (0, 1));
    assert_eq!(report.list.unwrap().id, "L9");
    assert_eq!(lock(&w.api.created).len(), 1);
    // Without İYS, only the consent is asked for.
    let card = no_consent.clone();
    let refused = member_of(&card, "L9", &[], false).unwrap_err();
    assert_eq!(refused.code, "no_consent");
}

fn consent(email: &str, status: ConsentStatus, at: DateTime<Utc>) -> ConsentRecord {
    ConsentRecord {
        recipient: email.into(),
        channel: crate::consent::ConsentChannel::Eposta,
        source: crate::consent::ConsentSource::HsWeb,
        status,
        consent_date: at,
        recipient_type: crate::consent::RecipientType::Bireysel,
        evidence: None,
    }
}

#[tokio::test]
async fn a_card_made_after_its_member_was_first_seen_gets_the_consent_within_a_week() {
    let w = world(3);
    night(&w, "t1").await;
    // Member 2 had no card; now the CRM has one with its address.
    lock(&w.store.cards).insert("kisi2@ornek.com".into(), vec!["card-2".into()]);
    let mut nights = 0;
    while !lock(&w.store.consents).iter().any(|(c, _)| c == "card-2") {
        nights += 1;
        assert!(nights <= 7, "not found within a week");
        w.clock.advance(chrono::Duration::days(1));
        night(&w, &format!("t{}", nights + 1)).await;
    }
}
