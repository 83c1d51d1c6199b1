//! End to end against the emulator and the Express sandbox (over HTTP): the nightly poll
//! fanned out and run, consent flips both ways, an unsubscribe, a bounced member, a token
//! expiring between nights under throttling and in the middle of a run, two nights changing nothing the second time, a run cut
//! by its deadline, the package refusal, and pushes of consenting people into a list.

use std::time::Instant;

use onecrm_domain::consent::{ConsentRecord, ConsentSource, ConsentStatus};
use onecrm_domain::express::member::{ConsentState, ConsentWrite, MemberLink};
use onecrm_domain::express::ports::ExpressStore;
use onecrm_domain::express::push::{ListChange, ListJob, PushJob};
use onecrm_domain::express::run::PollRun;
use onecrm_domain::express::worker::{list_envelope, push_envelope};
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::ports::{CrmRepository, TenantDirectory};
use onecrm_e2e::*;
use serde_json::json;

async fn kinds(world: &ExpressWorld, card: &str) -> Vec<String> {
    let entries = world
        .stack
        .crm()
        .timeline(&world.tenant.id, card, 50)
        .await
        .unwrap();
    let mut kinds: Vec<String> = entries.into_iter().map(|e| e.kind).collect();
    kinds.sort();
    kinds
}

async fn consent(world: &ExpressWorld, card: &str) -> ConsentRecord {
    world
        .stack
        .crm()
        .email_consents(&world.tenant.id, card)
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn a_nightly_poll_brings_consents_and_campaign_results_and_the_next_night_changes_nothing() {
    let world = express_world(60, 25, 60, "acme-key", 20).await;
    for i in 0..50 {
        world.stack.express_card(&world.tenant, i).await;
    }
    // The schedule's fan-out finds the tenant through its connection marker.
    let connected = world
        .stack
        .crm()
        .connected(Integration::Express)
        .await
        .unwrap();
    assert!(connected.contains(&world.tenant.id));
    let queued = world
        .app
        .worker()
        .fan_out(std::slice::from_ref(&world.tenant.id))
        .await
        .unwrap();
    assert_eq!(queued, 1);
    let job = world.queue.peek_envelope().await;
    assert_eq!(job.kind, "express.poll");
    world
        .app
        .worker()
        .handle(job, Instant::now() + std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let r = latest_poll(&world).await.report;
    // Members 24 and 49 have unreadable addresses: named and skipped.
    assert_eq!((r.members_read, r.skipped), (58, 2), "{r:?}");
    assert_eq!((r.consents_set, r.members_not_in_crm), (48, 10));
    assert_eq!((r.consents_onay, r.consents_ret), (41, 7));
    assert_eq!(
        (r.campaigns, r.campaigns_reported),
        (3, 2),
        "the draft has no report"
    );
    // Campaign 501: 50 rows on cards, 17 opened, 6 clicked; 502: 6 rows, 2 opened, 1 clicked.
    assert_eq!(r.entries_written, 73 + 9);
    let fields: Vec<&str> = r.problems_listed.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["members[25].email", "members[50].email"]);

    // Unsubscribed (3) and no permission (5) read as RET; the rest ONAY with Express's source.
    let unsubscribed = consent(&world, "uye-3").await;
    assert_eq!(
        (unsubscribed.status, unsubscribed.source),
        (ConsentStatus::Ret, ConsentSource::HsEposta)
    );
    assert_eq!(consent(&world, "uye-5").await.status, ConsentStatus::Ret);
    let given = consent(&world, "uye-1").await;
    assert_eq!(
        (given.status, given.source),
        (ConsentStatus::Onay, ConsentSource::HsFizikselOrtam)
    );
    assert_eq!(
        kinds(&world, "uye-0").await,
        [
            "email_campaign_sent",
            "email_campaign_sent",
            "email_clicked",
            "email_clicked",
            "email_opened",
            "email_opened"
        ]
    );
    assert_eq!(kinds(&world, "uye-7").await, ["email_hard_bounced"]);
    assert_eq!(kinds(&world, "uye-13").await, ["email_soft_bounced"]);

    let second = poll_night(&world).await.report;
    assert_eq!(
        (
            second.members_read,
            second.consents_set,
            second.entries_written
        ),
        (58, 0, 0),
        "{second:?}"
    );
    assert_eq!(kinds(&world, "uye-0").await.len(), 6, "nothing doubled");
    let runs = world
        .stack
        .integration_logs(&world.tenant.id, Integration::Express)
        .await;
    let finished: Vec<_> = runs
        .iter()
        .filter(|l| l.operation == "express.poll.run")
        .collect();
    assert_eq!(finished.len(), 2);
    assert!(
        finished.iter().all(|l| l.result == LogResult::Warning),
        "skipped records warn"
    );
}

#[tokio::test]
async fn consent_flips_both_ways_through_an_expired_token_and_throttling() {
    let world = express_world(30, 0, 0, "acme-key", 10).await;
    for i in 0..30 {
        world.stack.express_card(&world.tenant, i).await;
    }
    let first = poll_night(&world).await.report;
    assert_eq!(first.consents_set, 30);
    // In Express: 0 unsubscribes, 5 gives permission, 3 subscribes again.
    let sandbox = &world.sandbox;
    sandbox.control(
        "/sandbox/member",
        &json!({ "index": 0, "permission": "ONAY", "unsubscribed": true }).to_string(),
    );
    sandbox.control(
        "/sandbox/member",
        &json!({ "index": 5, "permission": "ONAY" }).to_string(),
    );
    sandbox.control(
        "/sandbox/member",
        &json!({ "index": 3, "permission": "ONAY" }).to_string(),
    );
    // Every token has expired, and every 4th call is answered 429 with Retry-After.
    sandbox.control("/sandbox/expire", "{}");
    sandbox.control("/sandbox/throttle", &json!({ "every": 4 }).to_string());
    let second = poll_night(&world).await.report;
    assert_eq!(
        (
            second.consents_set,
            second.consents_ret,
            second.consents_onay
        ),
        (3, 1, 2),
        "{second:?}"
    );
    assert!(sandbox.stats()["throttled"].as_u64().unwrap() > 0);
    assert_eq!(consent(&world, "uye-0").await.status, ConsentStatus::Ret);
    assert_eq!(consent(&world, "uye-5").await.status, ConsentStatus::Onay);
    assert_eq!(kinds(&world, "uye-0").await, ["email_unsubscribed"]);
    assert_eq!(kinds(&world, "uye-5").await, ["email_consent_given"]);
    assert_eq!(kinds(&world, "uye-3").await, ["email_consent_given"]);
    let logs = world
        .stack
        .integration_logs(&world.tenant.id, Integration::Express)
        .await;
    let logins = logs
        .iter()
        .filter(|l| l.operation == "express.token")
        .count();
    assert_eq!(logins, 2, "one login, one more after the expiry");
    sandbox.control("/sandbox/throttle", &json!({ "every": 0 }).to_string());
    let third = poll_night(&world).await.report;
    assert_eq!(third.consents_set, 0);
}

#[tokio::test]
async fn a_run_cut_by_its_deadline_continues_through_the_queue_counting_each_member_once() {
    let world = express_world(40, 0, 40, "acme-key", 10).await;
    for i in 0..40 {
        world.stack.express_card(&world.tenant, i).await;
    }
    let mut envelope = poll_job(&world.tenant);
    let mut invocations = 0;
    loop {
        invocations += 1;
        world
            .app
            .worker()
            .handle(envelope, Instant::now())
            .await
            .unwrap();
        let runs = &world.app.worker().poll.runs;
        let run: PollRun = runs.current(&world.tenant.id).await.unwrap().unwrap();
        if run.finished_at.is_some() {
            assert_eq!(run.lease.invocations, invocations);
            break;
        }
        assert!(invocations < 30);
        if invocations == 3 {
            // Every token expires in the middle of the run.
            world.sandbox.control("/sandbox/expire", "{}");
        }
        envelope = world.queue.peek_envelope().await;
        assert_eq!(envelope.kind, "express.poll");
    }
    assert!(invocations > 4, "{invocations}");
    let r = latest_poll(&world).await.report;
    assert_eq!((r.members_read, r.consents_set), (40, 40));
    let logs = world
        .stack
        .integration_logs(&world.tenant.id, Integration::Express)
        .await;
    let logins = logs
        .iter()
        .filter(|l| l.operation == "express.token")
        .count();
    assert_eq!(logins, 2, "logged in again once after the expiry");
    // 501: 40 rows, 14 opened (0, 3, .. 39: the bounced 7 and 13 are not among them),
    // 5 clicked; 502: 4 rows, 2 opened, 1 clicked.
    assert_eq!(r.entries_written, 40 + 14 + 5 + 4 + 2 + 1, "{r:?}");
}

#[tokio::test]
async fn no_active_package_ends_the_run_with_one_error_and_no_retry() {
    let world = express_world(10, 0, 0, "no-package", 10).await;
    world.stack.express_card(&world.tenant, 1).await;
    let run = poll_night(&world).await;
    assert!(
        run.needs_action.as_deref().unwrap().contains("paket"),
        "{:?}",
        run.needs_action
    );
    assert_eq!(run.report.members_read, 0);
    let errors = world
        .stack
        .error_logs(&world.tenant.id, "express_no_active_package")
        .await;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].operation, "express.poll.run");
}

#[tokio::test]
async fn consenting_people_are_pushed_with_their_iys_fields_once() {
    let world = express_world(5, 0, 0, "acme-key", 10).await;
    let stack = &world.stack;
    let tenant = &world.tenant;
    let mut ayse = onecrm_domain::party::Card::person_customer(
        "ayse",
        "Ayşe Yılmaz",
        vec![],
        chrono::Utc::now(),
    );
    ayse.emails = vec!["ayse@ornek.com.tr".into()];
    stack.crm().create_card(&tenant.id, &ayse).await.unwrap();
    let mut ali = ayse.clone();
    ali.card_id = "ali".into();
    ali.emails = vec!["ali@ornek.com.tr".into()];
    stack.crm().create_card(&tenant.id, &ali).await.unwrap();
    // Ayşe gave e-mail consent on the web site; Ali never did.
    let given: chrono::DateTime<chrono::Utc> = "2026-11-02T09:15:00Z".parse().unwrap();
    let record = ConsentRecord {
        recipient: "ayse@ornek.com.tr".into(),
        channel: onecrm_domain::consent::ConsentChannel::Eposta,
        source: ConsentSource::HsWeb,
        status: ConsentStatus::Onay,
        consent_date: given,
        recipient_type: onecrm_domain::consent::RecipientType::Bireysel,
        evidence: Some("web form".into()),
    };
    let seeded = ConsentWrite {
        link: MemberLink {
            member_id: "seed".into(),
            email: record.recipient.clone(),
            card_ids: vec![],
            consent: ConsentState {
                status: ConsentStatus::Onay,
                date: given,
                source: ConsentSource::HsWeb,
            },
        },
        records: vec![("ayse".into(), record)],
        entries: vec![],
    };
    stack
        .crm()
        .put_consents(&tenant.id, &[seeded])
        .await
        .unwrap();
    let push = |trace: &str| {
        push_envelope(
            &PushJob {
                tenant_id: tenant.id.clone(),
                trace_id: trace.into(),
                segment: "vip".into(),
                list_name: Some("VIP Müşteriler".into()),
                card_ids: vec!["ayse".into(), "ali".into()],
                remove_card_ids: vec![],
            },
            chrono::Utc::now(),
        )
    };
    let far = Instant::now() + std::time::Duration::from_secs(60);
    world.app.worker().handle(push("p1"), far).await.unwrap();
    let stats = world.sandbox.stats();
    assert_eq!(
        (stats["lists"].as_u64(), stats["created"].as_u64()),
        (Some(2), Some(1))
    );
    let list = stack
        .crm()
        .segment_list(&tenant.id, "vip")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.name, "VIP Müşteriler");
    let refused = stack.error_logs(&tenant.id, "iys_fields_missing").await;
    assert_eq!(refused.len(), 1, "Ali is named: {refused:?}");
    assert!(refused[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("cards[ali]"));
    // Again (a retried message): found by address and updated, no second list or member.
    world.app.worker().handle(push("p2"), far).await.unwrap();
    let stats = world.sandbox.stats();
    assert_eq!(
        (
            stats["lists"].as_u64(),
            stats["created"].as_u64(),
            stats["updated"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    // The segment's list renamed, then deleted (its members stay in the account).
    let change = |trace: &str, change: ListChange| {
        list_envelope(
            &ListJob {
                tenant_id: tenant.id.clone(),
                trace_id: trace.into(),
                segment: "vip".into(),
                change,
            },
            chrono::Utc::now(),
        )
    };
    let rename = ListChange::Rename {
        name: "Altın Müşteriler".into(),
    };
    world
        .app
        .worker()
        .handle(change("l1", rename), far)
        .await
        .unwrap();
    let list = stack
        .crm()
        .segment_list(&tenant.id, "vip")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.name, "Altın Müşteriler");
    world
        .app
        .worker()
        .handle(change("l2", ListChange::Delete), far)
        .await
        .unwrap();
    assert!(stack
        .crm()
        .segment_list(&tenant.id, "vip")
        .await
        .unwrap()
        .is_none());
    assert_eq!(world.sandbox.stats()["lists"].as_u64(), Some(1));
}

#[test]
fn the_committed_samples_are_jobs_of_the_demo_tenant() {
    for name in ["nightly-poll", "push-segment"] {
        let path = events_dir().join(format!("express-member-poll/{name}.message.json"));
        let envelope =
            onecrm_domain::envelope::Envelope::from_json(&std::fs::read_to_string(&path).unwrap())
                .unwrap();
        assert_eq!(envelope.tenant_id.as_str(), "demo");
        match envelope.kind.as_str() {
            "express.poll" => {
                let job: onecrm_domain::express::job::PollJob =
                    serde_json::from_value(envelope.payload).unwrap();
                assert_eq!(job.trace_id, envelope.trace_id.as_str());
            }
            _ => {
                let job: PushJob = serde_json::from_value(envelope.payload).unwrap();
                assert_eq!((job.segment.as_str(), job.card_ids.len()), ("vip", 3));
            }
        }
        // The SQS event wraps the same body.
        let event: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path.with_file_name(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            event["Records"][0]["body"].as_str().unwrap().trim(),
            std::fs::read_to_string(
                events_dir().join(format!("express-member-poll/{name}.message.json"))
            )
            .unwrap()
            .trim()
        );
    }
}
