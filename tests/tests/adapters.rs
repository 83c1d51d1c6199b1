//! The AWS adapters against the emulator, through the real aws-sdk clients.

use chrono::{Duration, Utc};
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::envelope::{Envelope, TraceId, ENVELOPE_VERSION};
use onecrm_domain::error::PortError;
use onecrm_domain::log::{Integration, LogDirection, LogEntry, LogResult};
use onecrm_domain::page::PageRequest;
use onecrm_domain::ports::{EventQueue, LogReader, LogSink, SecretStore, TenantDirectory};
use onecrm_domain::tenant::{TenantConfig, TenantId, TenantRoute};
use onecrm_e2e::*;
use serde_json::json;

#[tokio::test]
async fn sqs_queue_sends_25_envelopes_in_batches_of_at_most_10() {
    let stack = stack().await;
    let queue = stack.queue().await;
    let adapter = SqsEventQueue::new(stack.sqs(), &queue.url);
    let envelopes: Vec<Envelope> = (0..25)
        .map(|i| Envelope {
            v: ENVELOPE_VERSION,
            tenant_id: TenantId::parse("t-sqs").unwrap(),
            integration: Integration::WhatsApp,
            kind: "whatsapp.message".into(),
            external_id: format!("wamid.{i}"),
            trace_id: TraceId::new("trace-sqs"),
            received_at: Utc::now(),
            ordering_key: None,
            replay_of: None,
            payload: json!({ "i": i, "text": "ğüşiöç İı" }),
        })
        .collect();
    adapter.enqueue(&envelopes).await.unwrap();
    assert_eq!(queue.depth(&queue.url).await, 25);
    let message = stack
        .sqs()
        .receive_message()
        .queue_url(&queue.url)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap()
        .remove(0);
    let envelope = Envelope::from_json(message.body.as_deref().unwrap()).unwrap();
    assert_eq!(envelope.trace_id.as_str(), "trace-sqs");
    assert_eq!(envelope.payload["text"], "ğüşiöç İı");
    assert_eq!(
        message.message_attributes.unwrap()["trace_id"]
            .string_value
            .as_deref(),
        Some("trace-sqs")
    );
}

#[tokio::test]
async fn secrets_are_cached_until_refreshed() {
    let stack = stack().await;
    let store = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&stack.sdk));
    let name = format!(
        "{}t-{}/whatsapp",
        stack.settings.tenant_secret_prefix,
        uuid::Uuid::new_v4().simple()
    );
    store.put(&name, "v1").await.unwrap();
    assert_eq!(store.get(&name).await.unwrap().expose(), "v1");
    // Rotated behind our back (another writer): the cache still answers v1 ...
    let rotate_behind_our_back = |value: &'static str| {
        let (client, name) = (
            aws_sdk_secretsmanager::Client::new(&stack.sdk),
            name.clone(),
        );
        async move {
            client
                .put_secret_value()
                .secret_id(&name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    };
    rotate_behind_our_back("v2").await;
    assert_eq!(store.get(&name).await.unwrap().expose(), "v1");
    // A refresh (what the webhook asks for after a signature mismatch) within a minute of the
    // last read answers from the cache: forged signatures cannot drive Secrets Manager reads.
    assert_eq!(store.refresh(&name).await.unwrap().expose(), "v1");
    // Past the interval, a refresh reads the store and the rotation is picked up.
    let quick = SecretsManagerStore::with_refresh_interval(
        aws_sdk_secretsmanager::Client::new(&stack.sdk),
        std::time::Duration::from_millis(200),
    );
    store.put(&name, "v1").await.unwrap();
    assert_eq!(quick.get(&name).await.unwrap().expose(), "v1");
    rotate_behind_our_back("v2").await;
    assert_eq!(quick.refresh(&name).await.unwrap().expose(), "v1");
    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    assert_eq!(quick.refresh(&name).await.unwrap().expose(), "v2");
    assert_eq!(quick.get(&name).await.unwrap().expose(), "v2");
    assert!(format!("{:?}", store.get(&name).await.unwrap()).contains("***"));
    assert!(matches!(
        store.get("onecrm/tenants/nobody/whatsapp").await,
        Err(PortError::Rejected(_))
    ));
}

#[tokio::test]
async fn routes_cannot_be_taken_over_by_another_tenant() {
    let stack = stack().await;
    let crm = stack.crm();
    let route =
        TenantRoute::WhatsAppPhoneNumberId(format!("route-{}", uuid::Uuid::new_v4().simple()));
    let config = |id: &str| TenantConfig {
        tenant_id: TenantId::parse(id).unwrap(),
        name: id.into(),
        default_owner: None,
        integrations: Default::default(),
        created_at: Utc::now(),
    };
    let a = format!("t-a{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let b = format!("t-b{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    crm.put_tenant(&config(&a), std::slice::from_ref(&route))
        .await
        .unwrap();
    crm.put_tenant(&config(&a), std::slice::from_ref(&route))
        .await
        .unwrap();
    assert!(crm
        .put_tenant(&config(&b), std::slice::from_ref(&route))
        .await
        .is_err());
    assert_eq!(
        crm.resolve(&route)
            .await
            .unwrap()
            .unwrap()
            .tenant_id
            .as_str(),
        a
    );
    assert_eq!(
        crm.tenant(&TenantId::parse(&a).unwrap())
            .await
            .unwrap()
            .unwrap()
            .name,
        a
    );
    assert!(crm
        .resolve(&TenantRoute::WhatsAppPhoneNumberId("nobody".into()))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn log_records_are_queryable_by_integration_trace_and_error_code_with_ttl() {
    let stack = stack().await;
    let logs = stack.logs();
    let tenant = TenantId::parse(&format!(
        "t-log{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
    .unwrap();
    let log = onecrm_domain::log::IntegrationLog::new(
        std::sync::Arc::new(stack.logs()),
        std::sync::Arc::new(onecrm_adapters::system::SystemClock),
        std::sync::Arc::new(onecrm_adapters::system::UuidV7Ids),
        stack.settings.log_retention_days,
    );
    let entry = |result, trace: &str| {
        LogEntry::new(
            tenant.clone(),
            Integration::WhatsApp,
            LogDirection::Inbound,
            "test",
            result,
            TraceId::new(trace),
        )
    };
    log.write(
        entry(LogResult::Success, "trace-a")
            .payload(json!({"from": "905331234567", "nested": {"deep": [1, 2.5, "x"]}})),
    )
    .await;
    log.write(
        entry(LogResult::Error, "trace-a")
            .error("131026", "Message undeliverable")
            .http_status(400),
    )
    .await;
    log.write(entry(LogResult::Success, "trace-b")).await;
    let (from, to) = (
        Utc::now() - Duration::minutes(5),
        Utc::now() + Duration::minutes(5),
    );
    let all = logs
        .by_integration(
            &tenant,
            Integration::WhatsApp,
            from,
            to,
            PageRequest::first(100),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 3);
    assert!(
        all.windows(2).all(|w| w[0].occurred_at >= w[1].occurred_at),
        "newest first"
    );
    assert!(all.iter().all(|r| r.expires_at > Utc::now().timestamp()
        && r.expires_at <= (Utc::now() + Duration::days(180)).timestamp()));
    assert_eq!(
        logs.by_trace(&tenant, "trace-a", PageRequest::first(100))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let errors = logs
        .by_error_code(&tenant, "131026", from, to, PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!((errors.len(), errors[0].http_status), (1, Some(400)));
    let earlier = logs
        .by_integration(
            &tenant,
            Integration::WhatsApp,
            from - Duration::hours(1),
            from,
            PageRequest::first(100),
        )
        .await
        .unwrap();
    assert!(earlier.items.is_empty(), "the time range is honoured");
    let with_payload = all.iter().find(|r| r.payload.is_some()).unwrap();
    assert_eq!(
        with_payload.payload.as_ref().unwrap()["nested"]["deep"][1],
        json!(2.5)
    );
    assert_ne!(
        with_payload.payload.as_ref().unwrap()["from"],
        json!("905331234567")
    );
    // Other tenants see none of it.
    let other = TenantId::parse("t-other").unwrap();
    assert!(logs
        .by_trace(&other, "trace-a", PageRequest::first(100))
        .await
        .unwrap()
        .items
        .is_empty());
    let _ = logs.put(&all[0]).await;
}

#[tokio::test]
async fn a_card_is_found_by_any_key_phones_are_shared_and_tax_ids_are_claimed() {
    use onecrm_domain::party::{Card, CardKind, CustomerDetails, IdentityKey, PartyType};
    use onecrm_domain::phone::PhoneNumber;
    use onecrm_domain::ports::{CrmRepository, NewLeadOutcome};
    use onecrm_domain::tax_id::TaxId;
    use onecrm_domain::text::fold_email;

    let stack = stack().await;
    let crm = stack.crm();
    let tenant = TenantId::parse(&format!(
        "t-id{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
    .unwrap();
    let now = Utc::now();
    let company = |id: &str, email: &str| Card {
        profile: Default::default(),
        card_id: id.into(),
        kind: CardKind::Customer,
        display_name: "Örnek Lojistik A.Ş.".into(),
        phones: vec![PhoneNumber::parse("0212 555 12 34").unwrap()],
        emails: vec![fold_email(email).unwrap()],
        owner: None,
        external_ids: [("logo".to_string(), "120.01.001".to_string())].into(),
        lead: None,
        customer: Some(CustomerDetails {
            party_type: PartyType::Company,
            tax_id: Some(TaxId::parse("4540536920").unwrap().as_str().into()),
            source: None,
        }),
        contact: None,
        created_at: now,
        updated_at: now,
    };
    assert_eq!(
        crm.create_card(&tenant, &company("c-1", "Muhasebe@Ornek.COM.tr"))
            .await
            .unwrap(),
        NewLeadOutcome::Created
    );
    for key in [
        IdentityKey::Phone(PhoneNumber::parse("+90 (212) 555-12-34").unwrap()),
        IdentityKey::Email(fold_email("MUHASEBE@ornek.com.tr").unwrap()),
        IdentityKey::TaxId("4540536920".into()),
        IdentityKey::External {
            system: "logo".into(),
            id: "120.01.001".into(),
        },
    ] {
        assert_eq!(
            crm.find_card(&tenant, &key)
                .await
                .unwrap()
                .map(|c| c.card_id),
            Some("c-1".to_string()),
            "{key:?}"
        );
    }
    // Another card with the same tax id (or Logo code) is refused, all or nothing ...
    assert_eq!(
        crm.create_card(&tenant, &company("c-2", "muhasebe@ornek.com.tr"))
            .await
            .unwrap(),
        NewLeadOutcome::IdentityTaken
    );
    assert!(crm.card(&tenant, "c-2").await.unwrap().is_none());
    assert_eq!(
        crm.find_cards(
            &tenant,
            &IdentityKey::Email(fold_email("muhasebe@ornek.com.tr").unwrap())
        )
        .await
        .unwrap()
        .len(),
        1,
        "the refused card left no identity behind"
    );
    // ... but a phone is shared: a contact at the company's switchboard is a second card.
    let mut contact = company("c-3", "ayse@ornek.com.tr");
    contact.kind = CardKind::Contact;
    contact.customer = None;
    contact.external_ids.clear();
    assert_eq!(
        crm.create_card(&tenant, &contact).await.unwrap(),
        NewLeadOutcome::Created
    );
    let mut shared = crm
        .find_cards(
            &tenant,
            &IdentityKey::Phone(PhoneNumber::parse("0212 555 12 34").unwrap()),
        )
        .await
        .unwrap();
    onecrm_domain::identity::rank_cards(&mut shared);
    assert_eq!(
        shared
            .iter()
            .map(|c| c.card_id.as_str())
            .collect::<Vec<_>>(),
        ["c-1", "c-3"],
        "both cards, the customer first"
    );
    // Keys that disagree are flagged on both cards, and flagging twice keeps one flag each.
    for _ in 0..2 {
        crm.flag_possible_duplicate(&tenant, &shared[0], &shared[1], "same switchboard")
            .await
            .unwrap();
    }
    let flags = crm.possible_duplicates(&tenant, "c-3").await.unwrap();
    assert_eq!((flags.len(), flags[0].other.card_id.as_str()), (1, "c-1"));
    assert_eq!(
        crm.possible_duplicates(&tenant, "c-1").await.unwrap().len(),
        1
    );
    // Keys are per tenant: another tenant may have its own card with the same phone.
    let other = TenantId::parse(&format!(
        "t-id{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
    .unwrap();
    assert_eq!(
        crm.create_card(&other, &company("c-1", "muhasebe@ornek.com.tr"))
            .await
            .unwrap(),
        NewLeadOutcome::Created
    );
}
