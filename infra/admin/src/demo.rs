//! The documented demo tenant `make dev` seeds: its WhatsApp number and Meta app (the sample
//! events are signed with its test secrets), a known customer, and every integration's demo
//! settings against the local sandboxes.

use chrono::Utc;
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_domain::party::Card;
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, NewLeadOutcome};
use onecrm_domain::tenant::TenantId;

use crate::{add_tenant, express, forms, insurup, karel, logo, operator, pbx, TenantArgs};

/// The demo Meta app (README): its App Secret `demo-app-secret` signs the sample events.
const DEMO_META_APP_ID: &str = "1000000000000001";

/// The demo tenant's documented test values (events/ is signed with this app secret).
pub fn demo() -> TenantArgs {
    TenantArgs {
        id: "demo".into(),
        name: "Demo Sigorta A.Ş.".into(),
        default_owner: Some("user-demo-sales".into()),
        whatsapp_phone_number_id: "106540352242922".into(),
        whatsapp_display_phone_number: "908503031234".into(),
        whatsapp_business_account_id: "102290129340398".into(),
        meta_app_id: DEMO_META_APP_ID.into(),
        meta_app_secret: Some("demo-app-secret".into()),
        whatsapp_verify_token: "demo-verify-token".into(),
        whatsapp_access_token: Some("demo-access-token".into()),
        task_for_new_leads: true,
        no_leads_for_unknown_numbers: false,
        meta_page_id: vec![DEMO_META_PAGE_ID.into()],
        meta_page_token: Some("demo-page-token".into()),
    }
}

/// The demo Facebook Page: `events/meta-lead/*` are its deliveries.
const DEMO_META_PAGE_ID: &str = "104523456789012";

/// A known customer, so the demo shows both paths: new lead and existing card.
async fn demo_customer(
    crm: &CrmStore,
    tenant: &TenantId,
) -> Result<(), Box<dyn std::error::Error>> {
    let customer = Card {
        emails: vec!["mehmet.demir@example.com".into()],
        owner: Some("user-demo-sales".into()),
        ..Card::person_customer(
            "demo-customer-mehmet",
            "Mehmet Demir",
            vec![PhoneNumber::parse("0532 111 22 33")?],
            Utc::now(),
        )
    };
    match crm.create_card(tenant, &customer).await? {
        NewLeadOutcome::Created => println!("demo customer Mehmet Demir (+905321112233) created"),
        _ => println!("demo customer Mehmet Demir (+905321112233) already there"),
    }
    Ok(())
}

/// The demo tenant with every integration's demo settings, and its known customer.
pub async fn seed(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
) -> Result<(), Box<dyn std::error::Error>> {
    let tenant = add_tenant(crm, secrets, settings, demo(), false).await?;
    forms::seed_demo(crm, &tenant).await?;
    pbx::seed_demo(crm, &tenant).await?;
    insurup::seed_demo(crm, secrets, settings, &tenant).await?;
    karel::seed_demo(crm, secrets, settings, &tenant).await?;
    logo::seed_demo(crm, secrets, settings, &tenant).await?;
    express::seed_demo(crm, secrets, settings, &tenant).await?;
    operator::seed_demo(crm, &tenant).await?;
    demo_customer(crm, &tenant).await
}
