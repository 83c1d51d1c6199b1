//! Lead capture settings: web-form keys (issued, shown once, stored as a hash; revoked; the
//! documented demo key) and the Lead Ads question-to-field mapping.

use onecrm_adapters::dynamodb::CrmStore;
use onecrm_domain::meta_lead::lead::LeadField;
use onecrm_domain::tenant::{TenantId, TenantRoute, WebFormSettings};

/// The demo web-form key (`events/web-form/*` use it) and the origins `example.html` is
/// served from locally.
pub const DEMO_KEY: &str = "wf_demo_key";
pub const DEMO_ORIGINS: [&str; 2] = ["http://localhost:8080", "http://127.0.0.1:8080"];

/// A new key (or `key`) routed to the tenant; the origins merged into its web-form settings
/// and routed for the CORS preflight.
pub async fn add_key(
    crm: &CrmStore,
    tenant: &TenantId,
    origins: &[String],
    per_minute: Option<u32>,
    key: Option<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut config = crate::existing_tenant(crm, tenant).await?;
    let settings = config.integrations.web_form.get_or_insert(WebFormSettings {
        allowed_origins: Vec::new(),
        submissions_per_minute: 30,
    });
    for origin in origins {
        if !settings.allowed_origins.contains(origin) {
            settings.allowed_origins.push(origin.clone());
        }
    }
    if let Some(limit) = per_minute {
        settings.submissions_per_minute = limit;
    }
    let key = key.unwrap_or_else(|| format!("wf_{}", uuid::Uuid::new_v4().simple()));
    let mut routes = vec![TenantRoute::web_form_key(&key)];
    routes.extend(
        settings
            .allowed_origins
            .iter()
            .map(|o| TenantRoute::web_form_origin(o)),
    );
    crm.put_tenant(&config, &routes).await?;
    Ok(key)
}

pub async fn revoke_key(
    crm: &CrmStore,
    tenant: &TenantId,
    key: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    if crm
        .remove_route(tenant, &TenantRoute::web_form_key(key))
        .await?
    {
        println!("revoked; warm functions stop accepting it within a minute");
        Ok(())
    } else {
        Err(format!("{tenant} has no such key").into())
    }
}

pub async fn seed_demo(
    crm: &CrmStore,
    tenant: &TenantId,
) -> Result<(), Box<dyn std::error::Error>> {
    let origins = DEMO_ORIGINS.map(String::from);
    add_key(crm, tenant, &origins, None, Some(DEMO_KEY.into())).await?;
    println!("web form: key {DEMO_KEY}, origins {}", origins.join(", "));
    Ok(())
}

/// Stores one question → field mapping in the tenant's Lead Ads settings.
pub async fn map_lead_field(
    crm: &CrmStore,
    tenant: &TenantId,
    question: &str,
    field: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let field: LeadField = serde_json::from_value(serde_json::Value::String(field.into()))
        .map_err(|_| format!("{field} is not a lead field"))?;
    let mut config = crate::existing_tenant(crm, tenant).await?;
    let settings =
        config.integrations.meta_lead_ads.as_mut().ok_or_else(|| {
            format!("{tenant} has no Lead Ads Page yet (add-tenant --meta-page-id)")
        })?;
    settings
        .field_mapping
        .insert(question.trim().to_string(), field);
    crm.put_tenant(&config, &[]).await?;
    println!("{tenant}: Lead Ads question {question} -> {field:?}");
    Ok(())
}
