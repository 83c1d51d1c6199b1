//! `onecrm-admin`: tenant onboarding, and a look at what the integrations stored (a card with
//! its notes, tasks and timeline; log records), through the same adapters the functions use,
//! so the stored shapes have one definition. Works against AWS or the local emulator
//! (`AWS_ENDPOINT_URL`), reading table names and the secret prefix from the environment.

mod demo;
mod express;
mod forms;
mod insurup;
mod karel;
mod logo;
mod operator;
mod pbx;
mod report;

use chrono::{Datelike, Utc};
use clap::{Args, Parser, Subcommand};
use onecrm_adapters::config::{self, Settings};
use onecrm_adapters::dynamodb::{ArchiveStore, CrmStore, LogStore};
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::attribution::attribution_report;
use onecrm_domain::envelope::Envelope;
use onecrm_domain::identity::rank_cards;
use onecrm_domain::ingress::HeldEvent;
use onecrm_domain::log::{Integration, LogRecord};
use onecrm_domain::meta_lead::webhook::MetaLeadWebhook;
use onecrm_domain::meta_lead::SECRET_INTEGRATION as META_SECRET;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::IdentityKey;
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, EventArchive, LogReader, SecretStore};
use onecrm_domain::tenant::{
    app_secret_name, secret_name, IntegrationSettings, MetaLeadAdsSettings, TenantConfig, TenantId,
    TenantRoute, WhatsAppSettings,
};
use onecrm_domain::time::{istanbul_today, to_istanbul_display};
use onecrm_domain::whatsapp::webhook::{WhatsAppWebhook, DEFAULT_MAX_BODY_BYTES};
use onecrm_domain::whatsapp::{WhatsAppSecrets, SECRET_INTEGRATION};

#[derive(Parser)]
#[command(about = "ONE CRM integrations: operator commands")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Adds or updates a tenant with its WhatsApp number and secrets.
    AddTenant(Box<TenantArgs>),
    /// Creates the documented demo tenant (`demo`) and a demo customer, for `make dev`.
    SeedDemo,
    /// Shows the card that owns a phone number: details, notes, tasks, timeline (newest first).
    Card {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        phone: String,
    },
    /// Shows integration-log records, newest first: by trace id, by error code, or all of an
    /// integration in the last minutes.
    Logs {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        trace: Option<String>,
        #[arg(long)]
        error_code: Option<String>,
        #[arg(long, default_value = "whatsapp")]
        integration: String,
        #[arg(long, default_value = "60")]
        minutes: i64,
        /// The `next` cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Stores (or rotates) a Meta app's App Secret, shared by every tenant of the app.
    SetMetaAppSecret {
        #[arg(long)]
        app_id: String,
        #[arg(long, env = "META_APP_SECRET", hide_env_values = true)]
        app_secret: String,
    },
    /// Delivers events held for a WhatsApp number to the tenant that now owns it (add-tenant
    /// does this itself; run it again if a delivery raced the registration).
    Release {
        #[arg(long)]
        whatsapp_phone_number_id: String,
    },
    /// Lists events held for routes no tenant owns yet (they are delivered on registration).
    Unrouted {
        #[arg(long, default_value = "whatsapp")]
        integration: String,
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Stores (or renews) a tenant's Lead Ads Page token; then `replay-parked` the leads that
    /// waited for it.
    SetMetaPageToken {
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "META_PAGE_TOKEN", hide_env_values = true)]
        page_token: String,
    },
    /// Maps a Lead Ads form question to a lead field for a tenant (`consent`, `message`,
    /// `phone`...; `custom` to keep it a custom field); Meta's standard keys need no mapping.
    MapLeadField {
        #[arg(long)]
        tenant: String,
        /// The question's key in the form (`kvkk_onay`).
        #[arg(long)]
        question: String,
        /// full_name, first_name, last_name, email, phone, city, company, job_title, message,
        /// requested_service, consent or custom.
        #[arg(long)]
        field: String,
    },
    /// Issues a web-form API key for a tenant (printed once; stored only as its hash) and
    /// allows the given site origins for CORS.
    AddWebFormKey {
        #[arg(long)]
        tenant: String,
        /// A site allowed to post the forms from browsers (repeat for several).
        #[arg(long)]
        origin: Vec<String>,
        /// Submissions per minute per key (default 30).
        #[arg(long)]
        per_minute: Option<u32>,
    },
    /// Revokes a web-form API key (warm functions forget it within a minute).
    RevokeWebFormKey {
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "WEB_FORM_KEY", hide_env_values = true)]
        key: String,
    },
    /// Re-queues a tenant's parked events (kept while a partner token was refused), each once.
    ReplayParked {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "meta_lead_ads")]
        integration: String,
    },
    /// Leads created in [from, to) and how many are customers now, per source, utm_source,
    /// utm_medium, utm_campaign and Meta campaign (dates in Istanbul time; default this month).
    Report {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// First day, `2026-11-01`.
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Day after the last, `2026-12-01`.
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
    },
    /// Lists a tenant's events that did not parse, kept whole for a replay.
    Unparsed {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "whatsapp")]
        integration: String,
        #[arg(long)]
        cursor: Option<String>,
    },
    #[command(flatten)]
    Pbx(pbx::PbxCommand),
    #[command(flatten)]
    InsurUp(insurup::InsurUpCommand),
    #[command(flatten)]
    Karel(karel::KarelCommand),
    #[command(flatten)]
    Logo(logo::LogoCommand),
    #[command(flatten)]
    Express(express::ExpressCommand),
    #[command(flatten)]
    Operator(operator::OperatorCommand),
}

#[derive(Args)]
struct TenantArgs {
    #[arg(long)]
    id: String,
    #[arg(long)]
    name: String,
    /// CRM user who owns new leads and their tasks.
    #[arg(long)]
    default_owner: Option<String>,
    /// WhatsApp Cloud API phone number id (Meta App Dashboard > WhatsApp > API Setup).
    #[arg(long)]
    whatsapp_phone_number_id: String,
    #[arg(long)]
    whatsapp_display_phone_number: String,
    /// WhatsApp Business Account id.
    #[arg(long)]
    whatsapp_business_account_id: String,
    /// The Meta app the number is connected through (its App Secret signs the webhooks).
    #[arg(long)]
    meta_app_id: String,
    /// The app's App Secret, if it is not stored yet (read from the environment so it stays
    /// out of shell history); see `set-meta-app-secret` to rotate it.
    #[arg(long, env = "META_APP_SECRET", hide_env_values = true)]
    meta_app_secret: Option<String>,
    #[arg(long, env = "WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    whatsapp_verify_token: String,
    #[arg(long, env = "WHATSAPP_ACCESS_TOKEN", hide_env_values = true)]
    whatsapp_access_token: Option<String>,
    /// Open a task for the default owner when a WhatsApp message creates a lead.
    #[arg(long)]
    task_for_new_leads: bool,
    /// Do not create leads for unknown numbers (messages of known cards still land).
    #[arg(long)]
    no_leads_for_unknown_numbers: bool,
    /// Facebook Pages whose Lead Ads forms feed this tenant (repeat for several); their
    /// deliveries are signed by the same Meta app.
    #[arg(long)]
    meta_page_id: Vec<String>,
    /// The long-lived Page access token the Lead Ads worker reads leads with.
    #[arg(long, env = "META_PAGE_TOKEN", hide_env_values = true)]
    meta_page_token: Option<String>,
}

/// A tenant's configuration, or an error naming the tenant that does not exist.
pub(crate) async fn existing_tenant(
    crm: &CrmStore,
    tenant: &TenantId,
) -> Result<TenantConfig, Box<dyn std::error::Error>> {
    Ok(onecrm_domain::ports::TenantDirectory::tenant(crm, tenant)
        .await?
        .ok_or_else(|| format!("tenant {tenant} does not exist"))?)
}

/// Connects an existing tenant to an integration: `set` changes its settings, `credentials` go
/// into the tenant's secret for that integration (`<prefix><tenant>/<integration>`), then the
/// tenant is written again (its nightly-job markers with it). Returns the secret's name.
pub(crate) async fn connect_tenant(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    (tenant, integration): (&TenantId, &str),
    credentials: &serde_json::Value,
    set: impl FnOnce(&mut TenantConfig),
) -> Result<String, Box<dyn std::error::Error>> {
    let mut config = existing_tenant(crm, tenant).await?;
    set(&mut config);
    let name =
        onecrm_domain::tenant::secret_name(&settings.tenant_secret_prefix, tenant, integration);
    secrets.put(&name, &credentials.to_string()).await?;
    crm.put_tenant(&config, &[]).await?;
    Ok(name)
}

async fn add_tenant(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    args: TenantArgs,
    release_again: bool,
) -> Result<TenantId, Box<dyn std::error::Error>> {
    let tenant_id = TenantId::parse(&args.id)?;
    let config = TenantConfig {
        tenant_id: tenant_id.clone(),
        name: args.name,
        default_owner: args.default_owner,
        integrations: IntegrationSettings {
            whatsapp: Some(WhatsAppSettings {
                phone_number_id: args.whatsapp_phone_number_id.clone(),
                display_phone_number: args.whatsapp_display_phone_number,
                meta_app_id: args.meta_app_id.clone(),
                create_lead_for_unknown_numbers: !args.no_leads_for_unknown_numbers,
                create_task_for_new_lead: args.task_for_new_leads,
            }),
            meta_lead_ads: (!args.meta_page_id.is_empty()).then(|| MetaLeadAdsSettings {
                page_ids: args.meta_page_id.clone(),
                meta_app_id: args.meta_app_id.clone(),
                field_mapping: Default::default(),
            }),
            ..Default::default()
        },
        created_at: Utc::now(),
    };
    let mut routes = vec![
        TenantRoute::WhatsAppPhoneNumberId(args.whatsapp_phone_number_id),
        TenantRoute::WhatsAppBusinessAccount(args.whatsapp_business_account_id),
        TenantRoute::meta_verify_token(&args.whatsapp_verify_token),
    ];
    routes.extend(args.meta_page_id.iter().cloned().map(TenantRoute::MetaPage));
    if !args.meta_page_id.is_empty() {
        // The Lead Ads handshake reads the same verify token from the tenant's `meta` secret.
        let value = serde_json::json!({
            "verify_token": args.whatsapp_verify_token,
            "page_access_token": args.meta_page_token.clone().unwrap_or_default(),
        });
        let name = secret_name(&settings.tenant_secret_prefix, &tenant_id, META_SECRET);
        secrets.put(&name, &value.to_string()).await?;
        println!(
            "Lead Ads: Page(s) {} routed, secret {name}",
            args.meta_page_id.join(", ")
        );
    }
    if let Some(app_secret) = &args.meta_app_secret {
        set_meta_app_secret(secrets, settings, &args.meta_app_id, app_secret).await?;
    }
    let value = WhatsAppSecrets {
        verify_token: args.whatsapp_verify_token,
        access_token: args.whatsapp_access_token,
    };
    secrets
        .put(
            &secret_name(
                &settings.tenant_secret_prefix,
                &tenant_id,
                SECRET_INTEGRATION,
            ),
            &serde_json::to_string(&value)?,
        )
        .await?;
    crm.put_tenant(&config, &routes).await?;
    println!(
        "tenant {tenant_id} ready: {} route(s), secret {}",
        routes.len(),
        secret_name(
            &settings.tenant_secret_prefix,
            &tenant_id,
            SECRET_INTEGRATION
        )
    );
    release_held(&routes).await?;
    if release_again {
        // Webhooks remember an unknown number for a few seconds, and a delivery may be in flight
        // during the registration: whatever they held meanwhile is released once more.
        println!(
            "waiting {}s for the webhooks' caches, then releasing held events once more...",
            RELEASE_AGAIN_AFTER.as_secs()
        );
        tokio::time::sleep(RELEASE_AGAIN_AFTER).await;
        release_held(&routes).await?;
    }
    Ok(tenant_id)
}

/// Longer than the webhooks' unknown-route cache (10 s).
const RELEASE_AGAIN_AFTER: std::time::Duration = std::time::Duration::from_secs(12);

async fn set_meta_app_secret(
    secrets: &SecretsManagerStore,
    settings: &Settings,
    app_id: &str,
    app_secret: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let name = app_secret_name(&settings.app_secret_prefix, "meta", app_id);
    let value = serde_json::json!({ "app_secret": app_secret }).to_string();
    secrets.put(&name, &value).await?;
    println!("Meta app {app_id}: App Secret stored as {name}");
    Ok(())
}

/// Events that arrived for these routes before they were registered go to the tenant now.
/// Needs the webhook's queue and raw-event table (set by `make dev`'s stack.env).
/// Each route's webhook (WhatsApp numbers, Lead Ads Pages) delivers what it held.
async fn release_held(routes: &[TenantRoute]) -> Result<(), Box<dyn std::error::Error>> {
    let queue_of = |route: &TenantRoute| match route {
        TenantRoute::MetaPage(_) => "META_LEAD_QUEUE_URL",
        _ => "WHATSAPP_QUEUE_URL",
    };
    if config::optional("RAW_EVENT_TABLE").is_none() {
        println!("(RAW_EVENT_TABLE not set: held events not released)");
        return Ok(());
    }
    let sdk = onecrm_adapters::aws::sdk_config().await;
    let wiring = Wiring::from_env(&sdk)?;
    for route in routes {
        if config::optional(queue_of(route)).is_none() {
            println!(
                "({} not set: events held for {} not released)",
                queue_of(route),
                route.key()
            );
            continue;
        }
        let ports = wiring.ingress_ports(wiring.queue(queue_of(route))?)?;
        let settings = wiring.meta_webhook_settings(DEFAULT_MAX_BODY_BYTES, None);
        let delivered = match route {
            TenantRoute::MetaPage(_) => {
                MetaLeadWebhook::new(ports, settings).release(route).await?
            }
            _ => WhatsAppWebhook::new(ports, settings).release(route).await?,
        };
        if delivered > 0 {
            println!(
                "{delivered} held event part(s) for {} delivered",
                route.key()
            );
        }
    }
    Ok(())
}

fn print_held(page: &Page<HeldEvent>) {
    for h in &page.items {
        println!(
            "{}  {:?}  {}  trace={}  {}\n    {}",
            to_istanbul_display(&h.received_at),
            h.hold,
            h.path,
            h.trace_id,
            h.reason,
            h.raw.chars().take(300).collect::<String>()
        );
    }
    print_next(&page.next);
}

fn print_next(next: &Option<String>) {
    if let Some(next) = next {
        println!("more: --cursor {next}");
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    let sdk = onecrm_adapters::aws::sdk_config().await;
    let crm = CrmStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.crm_table);
    let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk));
    match cli.command {
        Command::Pbx(command) => pbx::run(&crm, command).await?,
        Command::InsurUp(command) => insurup::run(&crm, &secrets, &settings, command).await?,
        Command::Karel(command) => karel::run(&crm, &secrets, &settings, command).await?,
        Command::Logo(command) => logo::run(&crm, &secrets, &settings, command).await?,
        Command::Express(command) => express::run(&crm, &secrets, &settings, command).await?,
        Command::Operator(command) => operator::run(&crm, command).await?,
        Command::AddTenant(args) => {
            add_tenant(&crm, &secrets, &settings, *args, true).await?;
        }
        Command::SeedDemo => demo::seed(&crm, &secrets, &settings).await?,
        Command::Card { tenant, phone } => {
            let tenant = TenantId::parse(&tenant)?;
            let phone = PhoneNumber::parse(&phone)?;
            let mut cards = crm
                .find_cards(&tenant, &IdentityKey::Phone(phone.clone()))
                .await?;
            rank_cards(&mut cards);
            let Some(found) = cards.first().cloned() else {
                println!(
                    "no card has {} in tenant {tenant}",
                    phone.national_display()
                );
                return Ok(());
            };
            if cards.len() > 1 {
                let others: Vec<String> = cards[1..]
                    .iter()
                    .map(|c| format!("{} ({:?})", c.card_id, c.kind))
                    .collect();
                println!(
                    "{} belongs to {} cards; best match first. Also: {}",
                    phone.national_display(),
                    cards.len(),
                    others.join(", ")
                );
            }
            if let Some(card) = crm.card(&tenant, &found.card_id).await? {
                println!("{}", serde_json::to_string_pretty(&card)?);
            }
            for note in crm.notes(&tenant, &found.card_id).await? {
                println!(
                    "note  {}  {}: {}",
                    to_istanbul_display(&note.created_at),
                    note.author,
                    note.text
                );
            }
            for task in crm.tasks(&tenant, &found.card_id).await? {
                println!(
                    "task  due {}  {} [{:?}] for {}",
                    to_istanbul_display(&task.due_at),
                    task.title,
                    task.status,
                    task.owner
                );
            }
            for entry in crm.timeline(&tenant, &found.card_id, 50).await? {
                println!(
                    "timeline  {}  {:?} {:?} {}: {}  (trace {})",
                    to_istanbul_display(&entry.occurred_at),
                    entry.channel,
                    entry.direction,
                    entry.kind,
                    entry.text,
                    entry.trace_id
                );
            }
        }
        Command::Logs {
            tenant,
            trace,
            error_code,
            integration,
            minutes,
            cursor,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let integration = integration_named(&integration)?;
            let logs = LogStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.log_table);
            let (to, from) = (Utc::now(), Utc::now() - chrono::Duration::minutes(minutes));
            let page = PageRequest { limit: 100, cursor };
            let records = match (trace, error_code) {
                (Some(trace), _) => logs.by_trace(&tenant, &trace, page).await?,
                (None, Some(code)) => logs.by_error_code(&tenant, &code, from, to, page).await?,
                (None, None) => {
                    logs.by_integration(&tenant, integration, from, to, page)
                        .await?
                }
            };
            records.items.iter().for_each(print_log);
            print_next(&records.next);
        }
        Command::Release {
            whatsapp_phone_number_id,
        } => {
            release_held(&[TenantRoute::WhatsAppPhoneNumberId(whatsapp_phone_number_id)]).await?;
        }
        Command::SetMetaAppSecret { app_id, app_secret } => {
            set_meta_app_secret(&secrets, &settings, &app_id, &app_secret).await?;
        }
        Command::SetMetaPageToken { tenant, page_token } => {
            let name = secret_name(
                &settings.tenant_secret_prefix,
                &TenantId::parse(&tenant)?,
                META_SECRET,
            );
            let mut value: serde_json::Value = match secrets.get(&name).await {
                Ok(current) => serde_json::from_str(current.expose())?,
                Err(_) => serde_json::json!({}),
            };
            value["page_access_token"] = serde_json::Value::String(page_token);
            secrets.put(&name, &value.to_string()).await?;
            println!("Page token stored in {name}");
        }
        Command::Report { tenant, from, to } => {
            let today = istanbul_today(&Utc::now());
            let first = today.with_day(1).unwrap_or(today);
            let from = from.unwrap_or(first);
            let to = to.unwrap_or_else(|| {
                first
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(today)
            });
            let report = attribution_report(
                std::sync::Arc::new(crm),
                &TenantId::parse(&tenant)?,
                report::istanbul_midnight(from)?,
                report::istanbul_midnight(to)?,
            )
            .await?;
            report::print(&report, from, to);
        }
        Command::MapLeadField {
            tenant,
            question,
            field,
        } => {
            forms::map_lead_field(&crm, &TenantId::parse(&tenant)?, &question, &field).await?;
        }
        Command::AddWebFormKey {
            tenant,
            origin,
            per_minute,
        } => {
            let key =
                forms::add_key(&crm, &TenantId::parse(&tenant)?, &origin, per_minute, None).await?;
            println!("web-form API key for {tenant} (shown once; send it as x-api-key): {key}");
        }
        Command::RevokeWebFormKey { tenant, key } => {
            forms::revoke_key(&crm, &TenantId::parse(&tenant)?, &key).await?;
        }
        Command::ReplayParked {
            tenant,
            integration,
        } => {
            replay_parked(
                &sdk,
                &TenantId::parse(&tenant)?,
                integration_named(&integration)?,
            )
            .await?;
        }
        Command::Unrouted {
            integration,
            cursor,
        } => {
            let page = archive(&sdk)?
                .unrouted(
                    integration_named(&integration)?,
                    None,
                    PageRequest { limit: 50, cursor },
                )
                .await?;
            print_held(&page);
        }
        Command::Unparsed {
            tenant,
            integration,
            cursor,
        } => {
            let page = archive(&sdk)?
                .unparsed(
                    &TenantId::parse(&tenant)?,
                    integration_named(&integration)?,
                    PageRequest { limit: 50, cursor },
                )
                .await?;
            print_held(&page);
        }
    }
    Ok(())
}

/// Every parked event of the tenant back on its integration's queue, then out of the archive:
/// the worker's idempotency makes a replay of one that had in fact succeeded a duplicate.
async fn replay_parked(
    sdk: &aws_config::SdkConfig,
    tenant: &TenantId,
    integration: Integration,
) -> Result<(), Box<dyn std::error::Error>> {
    let queue_variable = match integration {
        Integration::MetaLeadAds => "META_LEAD_QUEUE_URL",
        Integration::WhatsApp => "WHATSAPP_QUEUE_URL",
        Integration::Karel => "KAREL_QUEUE_URL",
        other => return Err(format!("{} parks nothing yet", other.as_str()).into()),
    };
    let queue = Wiring::from_env(sdk)?.queue(queue_variable)?;
    let archive = archive(sdk)?;
    let mut replayed = 0;
    loop {
        // Released events leave the partition: the first page is always the next one.
        let page = archive
            .parked(tenant, integration, PageRequest::first(25))
            .await?;
        if page.items.is_empty() {
            break;
        }
        let envelopes = page
            .items
            .iter()
            .map(|held| Envelope::from_json(&held.raw))
            .collect::<Result<Vec<_>, _>>()?;
        queue.enqueue(&envelopes).await?;
        for held in &page.items {
            archive.release(held).await?;
        }
        replayed += envelopes.len();
    }
    println!("{replayed} parked event(s) of {tenant} re-queued");
    Ok(())
}

fn archive(sdk: &aws_config::SdkConfig) -> Result<ArchiveStore, config::ConfigError> {
    Ok(ArchiveStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        config::required("RAW_EVENT_TABLE")?,
    ))
}

fn integration_named(name: &str) -> Result<Integration, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
}

/// One line per record, as the log screen lists them (Istanbul time; masked as stored).
fn print_log(r: &LogRecord) {
    println!(
        "{}  {} {:<28} {:<9} http={} code={} trace={} {}{}",
        to_istanbul_display(&r.occurred_at),
        r.integration.as_str(),
        r.operation,
        r.result.as_str(),
        r.http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        r.error_code.as_deref().unwrap_or("-"),
        r.trace_id,
        r.error_message.as_deref().unwrap_or(""),
        r.external_message
            .as_deref()
            .map(|m| format!(" {m}"))
            .unwrap_or_default(),
    );
}
