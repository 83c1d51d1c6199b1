//! Operator API keys from the command line: made once, shown once, stored by their hash.

use clap::Subcommand;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_domain::operator::keys::{key_hash, OperatorKey, OperatorKeys, Scope};
use onecrm_domain::tenant::TenantId;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The demo tenant's operator key (every scope), documented for `make dev`.
pub const DEMO_KEY: &str = "demo-operator-key";

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Makes an operator API key for a tenant and prints it (once: only its hash is kept).
    AddOperatorKey {
        #[arg(long)]
        tenant: String,
        /// Who or what holds it ("log screen", "Ayşe").
        #[arg(long)]
        name: String,
        /// Comma separated: logs, payloads, leads, cards, calls, send, replay (default: all).
        #[arg(long)]
        scopes: Option<String>,
    },
}

async fn store(
    crm: &CrmStore,
    tenant: &TenantId,
    name: &str,
    key: &str,
    scopes: Vec<Scope>,
) -> Result<()> {
    crate::existing_tenant(crm, tenant).await?;
    let stored = OperatorKey {
        tenant_id: tenant.clone(),
        name: name.into(),
        scopes,
        created_at: chrono::Utc::now(),
    };
    crm.put_key(&key_hash(key), &stored).await?;
    Ok(())
}

pub async fn seed_demo(crm: &CrmStore, tenant: &TenantId) -> Result<()> {
    store(crm, tenant, "demo", DEMO_KEY, Scope::ALL.to_vec()).await?;
    println!("operator API key {DEMO_KEY} (every scope)");
    Ok(())
}

pub async fn run(crm: &CrmStore, command: OperatorCommand) -> Result<()> {
    match command {
        OperatorCommand::AddOperatorKey {
            tenant,
            name,
            scopes,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let scopes = match scopes {
                None => Scope::ALL.to_vec(),
                Some(text) => text
                    .split(',')
                    .map(|s| {
                        Scope::parse(s).ok_or_else(|| format!("--scopes: {s:?} is not a scope"))
                    })
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            };
            let key = format!("ocrm_{}", uuid::Uuid::new_v4().simple());
            store(crm, &tenant, &name, &key, scopes).await?;
            println!("{key}\n(shown once; only its hash is stored)");
            Ok(())
        }
    }
}
