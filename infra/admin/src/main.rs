//! `onecrm-admin`: tenant onboarding, and a look at what the integrations stored (a card with
//! its notes, tasks and timeline; log records), through the same adapters the functions use,
//! so the stored shapes have one definition. Works against AWS or the local emulator
//! (`AWS_ENDPOINT_URL`), reading table names and the secret prefix from the environment.

use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::{CrmStore, LogStore};
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_domain::log::{Integration, LogRecord};
use onecrm_domain::party::{Card, IdentityKey};
use onecrm_domain::phone::PhoneNumber;
use onecrm_domain::ports::{CrmRepository, LogReader, NewLeadOutcome};
use onecrm_domain::tenant::{secret_name, TenantConfig, TenantId, TenantRoute, WhatsAppSettings};
use onecrm_domain::time::to_istanbul_display;
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
    },
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
    /// The Meta app's App Secret (read from the environment so it stays out of shell history).
    #[arg(long, env = "WHATSAPP_APP_SECRET", hide_env_values = true)]
    whatsapp_app_secret: String,
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
}

/// The demo tenant's documented test values (events/ is signed with this app secret).
fn demo() -> TenantArgs {
    TenantArgs {
        id: "demo".into(),
        name: "Demo Sigorta A.Ş.".into(),
        default_owner: Some("user-demo-sales".into()),
        whatsapp_phone_number_id: "106540352242922".into(),
        whatsapp_display_phone_number: "908503031234".into(),
        whatsapp_business_account_id: "102290129340398".into(),
        whatsapp_app_secret: "demo-app-secret".into(),
        whatsapp_verify_token: "demo-verify-token".into(),
        whatsapp_access_token: Some("demo-access-token".into()),
        task_for_new_leads: true,
        no_leads_for_unknown_numbers: false,
    }
}

async fn add_tenant(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    args: TenantArgs,
) -> Result<TenantId, Box<dyn std::error::Error>> {
    let tenant_id = TenantId::parse(&args.id)?;
    let config = TenantConfig {
        tenant_id: tenant_id.clone(),
        name: args.name,
        default_owner: args.default_owner,
        whatsapp: Some(WhatsAppSettings {
            phone_number_id: args.whatsapp_phone_number_id.clone(),
            display_phone_number: args.whatsapp_display_phone_number,
            create_lead_for_unknown_numbers: !args.no_leads_for_unknown_numbers,
            create_task_for_new_lead: args.task_for_new_leads,
        }),
        created_at: Utc::now(),
    };
    let routes = [
        TenantRoute::WhatsAppPhoneNumberId(args.whatsapp_phone_number_id),
        TenantRoute::WhatsAppBusinessAccount(args.whatsapp_business_account_id),
        TenantRoute::whatsapp_verify_token(&args.whatsapp_verify_token),
    ];
    let value = WhatsAppSecrets {
        app_secret: args.whatsapp_app_secret,
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
    Ok(tenant_id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let settings = Settings::from_env()?;
    let sdk = onecrm_adapters::aws::sdk_config().await;
    let crm = CrmStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.crm_table);
    let secrets = SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&sdk));
    match cli.command {
        Command::AddTenant(args) => {
            add_tenant(&crm, &secrets, &settings, *args).await?;
        }
        Command::SeedDemo => {
            let tenant = add_tenant(&crm, &secrets, &settings, demo()).await?;
            // A known customer, so the demo shows both paths: new lead and existing card.
            let now = Utc::now();
            let customer = Card {
                emails: vec!["mehmet.demir@example.com".into()],
                owner: Some("user-demo-sales".into()),
                ..Card::person_customer(
                    "demo-customer-mehmet",
                    "Mehmet Demir",
                    vec![PhoneNumber::parse("0532 111 22 33")?],
                    now,
                )
            };
            match crm.create_card(&tenant, &customer).await? {
                NewLeadOutcome::Created => {
                    println!("demo customer Mehmet Demir (+905321112233) created")
                }
                _ => println!("demo customer Mehmet Demir (+905321112233) already there"),
            }
        }
        Command::Card { tenant, phone } => {
            let tenant = TenantId::parse(&tenant)?;
            let phone = PhoneNumber::parse(&phone)?;
            let Some(found) = crm
                .find_card(&tenant, &IdentityKey::Phone(phone.clone()))
                .await?
            else {
                println!(
                    "no card has {} in tenant {tenant}",
                    phone.national_display()
                );
                return Ok(());
            };
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
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let integration: Integration =
                serde_json::from_value(serde_json::Value::String(integration))?;
            let logs = LogStore::new(aws_sdk_dynamodb::Client::new(&sdk), &settings.log_table);
            let (to, from) = (Utc::now(), Utc::now() - chrono::Duration::minutes(minutes));
            let records = match (trace, error_code) {
                (Some(trace), _) => logs.by_trace(&tenant, &trace).await?,
                (None, Some(code)) => logs.by_error_code(&tenant, &code, from, to, 100).await?,
                (None, None) => {
                    logs.by_integration(&tenant, integration, from, to, 100)
                        .await?
                }
            };
            records.iter().for_each(print_log);
        }
    }
    Ok(())
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
