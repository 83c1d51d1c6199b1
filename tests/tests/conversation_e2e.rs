//! Exactly once by the conversation entry: a message is kept in its sender's conversation under
//! a key derived from its wamid, whatever card it landed on (end to end against the emulator).

use chrono::Utc;
use onecrm_domain::log::{Integration, LogResult};
use onecrm_domain::page::PageRequest;
use onecrm_domain::party::{CardKind, IdentityKey};
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, LogReader};
use onecrm_e2e::*;

const SENDER: &str = "+905331234567";

fn sender() -> IdentityKey {
    IdentityKey::Phone(PhoneNumber::parse(SENDER).unwrap())
}

/// The message lands on a new lead; then a customer card takes the same number (it becomes the
/// best match). Meta redelivers the message: it is still a duplicate (its dedupe is the entry
/// in the sender's conversation, whatever card it landed on), nothing reaches the customer, and
/// the trace path holds the webhook's record and the worker's beside it.
#[tokio::test]
async fn a_redelivery_after_the_best_match_changed_is_still_a_duplicate() {
    let (stack, tenant, queue) = setup(false).await;
    let (inbound, worker, crm) = (stack.inbound(&queue), stack.worker(&queue), stack.crm());
    let deliver =
        || whatsapp_inbound::handle(&inbound, signed_request("text-message", &tenant, |b| b));
    assert_eq!(deliver().await.unwrap().status(), 200);
    queue.drain(&worker).await;
    let lead = crm.find_card(&tenant.id, &sender()).await.unwrap().unwrap();
    assert_eq!(lead.kind, CardKind::Lead);
    let customer = onecrm_domain::party::Card::person_customer(
        "cust-later",
        "Ayşe Yılmaz",
        vec![PhoneNumber::parse(SENDER).unwrap()],
        Utc::now(),
    );
    crm.create_card(&tenant.id, &customer).await.unwrap();
    assert_eq!(
        crm.find_card(&tenant.id, &sender())
            .await
            .unwrap()
            .unwrap()
            .card_id,
        "cust-later"
    );
    assert_eq!(deliver().await.unwrap().status(), 200);
    queue.drain(&worker).await;
    assert!(crm
        .timeline(&tenant.id, "cust-later", 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        crm.timeline(&tenant.id, &lead.card_id, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    let records = stack
        .integration_logs(&tenant.id, Integration::WhatsApp)
        .await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r.result == LogResult::Duplicate)
            .count(),
        1
    );
    let processed = records
        .iter()
        .find(|r| {
            r.result == LogResult::Success && r.card_id.as_deref() == Some(lead.card_id.as_str())
        })
        .expect("the worker's record");
    assert!(
        processed.follows,
        "the worker's record follows the webhook's"
    );
    let path = stack
        .logs()
        .by_trace(
            &tenant.id,
            processed.trace_id.as_str(),
            PageRequest::first(50),
        )
        .await
        .unwrap()
        .items;
    let operations: Vec<&str> = path.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(path.len(), 2, "{operations:?}");
    assert!(
        path.iter()
            .any(|r| !r.follows && r.http_status == Some(200)),
        "{operations:?}"
    );
    assert!(path.iter().all(|r| r.trace_id == processed.trace_id));
}
