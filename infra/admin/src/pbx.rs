//! PBX settings: tokens (issued, shown once, stored as a hash; revoked), source allow-lists,
//! agent → CRM user mapping, and the call queue.

use clap::Subcommand;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_domain::page::PageRequest;
use onecrm_domain::ports::CallRepository;
use onecrm_domain::tenant::{PbxSettings, TenantId, TenantRoute};
use onecrm_domain::time::to_istanbul_display;

/// The demo PBX token (`events/pbx-call/*` and the README use it).
pub const DEMO_TOKEN: &str = "pbx_demo_token";

#[derive(Subcommand)]
pub enum PbxCommand {
    /// Issues a PBX token for a tenant (printed once; stored only as its hash) and sets the
    /// PBX vendor and the addresses it posts from.
    AddPbxToken {
        #[arg(long)]
        tenant: String,
        /// netgsm, karel or generic (documentation only: both formats are read by shape).
        #[arg(long, default_value = "generic")]
        vendor: String,
        /// An address or CIDR range the PBX posts from (repeat for several; none allows any).
        #[arg(long)]
        allow: Vec<String>,
    },
    /// Revokes a PBX token (warm functions forget it within a minute).
    RevokePbxToken {
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "PBX_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Maps a PBX agent id or extension (dahili) to the CRM user who answers on it.
    MapPbxAgent {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        agent_id: Option<String>,
        #[arg(long)]
        extension: Option<String>,
    },
    /// The call queue, newest first: the tenant's, or one agent's (by CRM user or extension).
    CallQueue {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        extension: Option<String>,
        #[arg(long, default_value = "20")]
        limit: usize,
        /// The `next` cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn empty_settings(vendor: &str) -> PbxSettings {
    PbxSettings {
        vendor: vendor.into(),
        allowed_sources: Vec::new(),
        agent_ids: Default::default(),
        extensions: Default::default(),
    }
}

pub async fn add_token(
    crm: &CrmStore,
    tenant: &TenantId,
    vendor: &str,
    allow: &[String],
    token: Option<String>,
) -> Result<String> {
    for range in allow {
        let net = range.split('/').next().unwrap_or_default();
        net.parse::<std::net::IpAddr>()
            .map_err(|_| format!("{range} is not an address or CIDR range"))?;
    }
    let mut config = crate::existing_tenant(crm, tenant).await?;
    let settings = config
        .integrations
        .pbx
        .get_or_insert_with(|| empty_settings(vendor));
    settings.vendor = vendor.into();
    if !allow.is_empty() {
        settings.allowed_sources = allow.to_vec();
    }
    let token = token.unwrap_or_else(|| format!("pbx_{}", uuid::Uuid::new_v4().simple()));
    crm.put_tenant(&config, &[TenantRoute::pbx_token(&token)])
        .await?;
    Ok(token)
}

pub async fn seed_demo(crm: &CrmStore, tenant: &TenantId) -> Result<()> {
    add_token(crm, tenant, "netgsm", &[], Some(DEMO_TOKEN.into())).await?;
    map_agent(crm, tenant, "user-demo-sales", Some("911"), Some("911")).await?;
    println!("PBX: token {DEMO_TOKEN}, agent 911 / extension 911 -> user-demo-sales");
    Ok(())
}

pub async fn map_agent(
    crm: &CrmStore,
    tenant: &TenantId,
    user: &str,
    agent_id: Option<&str>,
    extension: Option<&str>,
) -> Result<()> {
    if agent_id.is_none() && extension.is_none() {
        return Err("give --agent-id, --extension or both".into());
    }
    let mut config = crate::existing_tenant(crm, tenant).await?;
    let settings = config
        .integrations
        .pbx
        .get_or_insert_with(|| empty_settings("generic"));
    if let Some(agent) = agent_id {
        settings.agent_ids.insert(agent.trim().into(), user.into());
    }
    if let Some(extension) = extension {
        settings
            .extensions
            .insert(extension.trim().into(), user.into());
    }
    crm.put_tenant(&config, &[]).await?;
    Ok(())
}

pub async fn run(crm: &CrmStore, command: PbxCommand) -> Result<()> {
    match command {
        PbxCommand::AddPbxToken {
            tenant,
            vendor,
            allow,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let token = add_token(crm, &tenant, &vendor, &allow, None).await?;
            println!("PBX token for {tenant} (shown once; only its hash is stored):\n{token}");
            println!("send it as X-PBX-Token, as Authorization: Bearer, or as the URL's last segment (/pbx/<token>)");
        }
        PbxCommand::RevokePbxToken { tenant, token } => {
            let tenant = TenantId::parse(&tenant)?;
            if !crm
                .remove_route(&tenant, &TenantRoute::pbx_token(&token))
                .await?
            {
                return Err(format!("{tenant} has no such token").into());
            }
            println!("revoked; warm functions stop accepting it within a minute");
        }
        PbxCommand::MapPbxAgent {
            tenant,
            user,
            agent_id,
            extension,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            map_agent(
                crm,
                &tenant,
                &user,
                agent_id.as_deref(),
                extension.as_deref(),
            )
            .await?;
            println!("{tenant}: agent {agent_id:?} / extension {extension:?} -> {user}");
        }
        PbxCommand::CallQueue {
            tenant,
            user,
            extension,
            limit,
            cursor,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let agent = user
                .map(|u| format!("USER#{u}"))
                .or_else(|| extension.map(|e| format!("EXT#{e}")));
            let page = PageRequest { limit, cursor };
            let calls = crm.call_queue(&tenant, agent.as_deref(), page).await?;
            println!("TARİH/SAAT        NUMARA             DAHİLİ  ÇAĞRI ID              MUHTEMEL ARAYAN            TUŞLAMA  İŞLEM");
            for call in &calls.items {
                let number = call
                    .number
                    .as_ref()
                    .map(|n| n.national_display())
                    .unwrap_or_else(|| call.unmatchable.clone().unwrap_or_default());
                let caller = call.cards.first().map(|c| c.name.as_str()).unwrap_or("-");
                let action = match &call.opened {
                    Some(o) => format!("{} {}", call.action.as_str(), o.readable_number),
                    None => call.action.as_str().to_string(),
                };
                println!(
                    "{:<17} {:<18} {:<7} {:<21} {:<26} {:<8} {}",
                    to_istanbul_display(&call.occurred_at),
                    number,
                    call.extension.as_deref().unwrap_or("-"),
                    call.call_id,
                    caller,
                    call.keypress.as_deref().unwrap_or("-"),
                    action
                );
            }
            if let Some(next) = calls.next {
                println!("more: --cursor {next}");
            }
        }
    }
    Ok(())
}
