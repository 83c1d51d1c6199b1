//! InsurUp settings: the account the webhook URL names, the webhook secret and the agent user.

use clap::Subcommand;
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_domain::insurup::SECRET_INTEGRATION;
use onecrm_domain::tenant::{secret_name, InsurUpSettings, TenantId, TenantRoute};

/// The demo tenant's documented test values (`events/insurup-policy-webhook/*` are signed with
/// the secret; the local InsurUp sandbox accepts the agent user).
pub const DEMO_ACCOUNT: &str = "demo-insurup";
pub const DEMO_WEBHOOK_SECRET: &str = "demo-insurup-secret";
pub const DEMO_EMAIL: &str = "demo@insurup.local";
pub const DEMO_PASSWORD: &str = "demo-password";

#[derive(Subcommand)]
pub enum InsurUpCommand {
    /// Connects a tenant to InsurUp: the account id its webhook URL ends with
    /// (`.../insurup/<account>`), the webhook secret and the agent user (from the environment,
    /// so they stay out of shell history).
    AddInsurup {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        account: String,
        #[arg(long, env = "INSURUP_WEBHOOK_SECRET", hide_env_values = true)]
        webhook_secret: String,
        #[arg(long, env = "INSURUP_EMAIL")]
        email: String,
        #[arg(long, env = "INSURUP_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// What a tenant's InsurUp connection consists of.
pub struct Connection<'a> {
    pub account: &'a str,
    pub webhook_secret: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

pub async fn connect(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
    connection: Connection<'_>,
) -> Result<()> {
    let account = connection.account.trim();
    if account.is_empty()
        || account.len() > 64
        || !account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("the account must be 1-64 letters, digits, '-' or '_' (it is the webhook URL's last segment)".into());
    }
    let mut config = crate::existing_tenant(crm, tenant).await?;
    config.integrations.insurup = Some(InsurUpSettings {
        account_id: account.to_string(),
    });
    let name = secret_name(&settings.tenant_secret_prefix, tenant, SECRET_INTEGRATION);
    let value = serde_json::json!({
        "webhook_secret": connection.webhook_secret,
        "email": connection.email,
        "password": connection.password,
    });
    secrets.put(&name, &value.to_string()).await?;
    crm.put_tenant(&config, &[TenantRoute::InsurUpAccount(account.to_string())])
        .await?;
    println!("{tenant}: InsurUp account {account} routed (webhook URL .../insurup/{account}), secret {name}");
    Ok(())
}

pub async fn seed_demo(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
) -> Result<()> {
    {
        let demo = Connection {
            account: DEMO_ACCOUNT,
            webhook_secret: DEMO_WEBHOOK_SECRET,
            email: DEMO_EMAIL,
            password: DEMO_PASSWORD,
        };
        connect(crm, secrets, settings, tenant, demo)
    }
    .await
}

pub async fn run(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    command: InsurUpCommand,
) -> Result<()> {
    match command {
        InsurUpCommand::AddInsurup {
            tenant,
            account,
            webhook_secret,
            email,
            password,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            connect(
                crm,
                secrets,
                settings,
                &tenant,
                Connection {
                    account: &account,
                    webhook_secret: &webhook_secret,
                    email: &email,
                    password: &password,
                },
            )
            .await
        }
    }
}
