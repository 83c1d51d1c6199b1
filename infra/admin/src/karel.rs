//! Karel CRM settings: the API token, representatives, stages, custom fields and customer
//! card ids; and an operator's answer to a create that got no clear answer.

use clap::Subcommand;
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_domain::karel::worker::{KarelLink, KarelLinks, LinkState};
use onecrm_domain::karel::SECRET_INTEGRATION;
use onecrm_domain::tenant::{KarelCustomField, KarelFieldKind, KarelSettings, TenantId};

pub const DEMO_TOKEN: &str = "demo-karel-token";

#[derive(Subcommand)]
pub enum KarelCommand {
    /// Connects a tenant to Karel CRM: its API token (`KAREL_API_TOKEN`, a PpApiUser's bearer
    /// token) and the representative for opportunities whose owner has no mapping.
    AddKarel {
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "KAREL_API_TOKEN", hide_env_values = true)]
        api_token: String,
        #[arg(long)]
        default_representative: Option<i64>,
        /// Delete an opportunity's collections (tahsilatlar) with it (default: keep them).
        #[arg(long)]
        delete_collections: bool,
    },
    /// Maps CRM names onto Karel ids: a user to a representative card, a stage to a pipeline
    /// stage, a card to its Karel customer card, a field to a custom field (repeatable options
    /// `--option yazilim=5` for dropdowns).
    MapKarel {
        #[arg(long)]
        tenant: String,
        #[arg(long, requires = "representative")]
        user: Option<String>,
        #[arg(long)]
        representative: Option<i64>,
        #[arg(long, requires = "stage_id")]
        stage: Option<String>,
        #[arg(long)]
        stage_id: Option<i64>,
        #[arg(long, requires = "karel_card")]
        card: Option<String>,
        #[arg(long)]
        karel_card: Option<i64>,
        #[arg(long, requires_all = ["field_id", "label"])]
        field: Option<String>,
        #[arg(long)]
        field_id: Option<i64>,
        #[arg(long)]
        label: Option<String>,
        /// text, date or option.
        #[arg(long, default_value = "text")]
        kind: String,
        #[arg(long)]
        option: Vec<String>,
    },
    /// Answers a create that got no clear answer: the Karel id it has (found by the tag
    /// `onecrm:<opportunity>`), or `--release` when it is not in Karel; then `replay-parked
    /// --integration karel`.
    SetKarelLink {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        opportunity: String,
        #[arg(long, conflicts_with = "release")]
        karel_id: Option<i64>,
        #[arg(long)]
        release: bool,
    },
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub async fn connect(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
    token: &str,
    default_representative: Option<i64>,
    delete_collections: bool,
) -> Result<()> {
    let set = |config: &mut onecrm_domain::tenant::TenantConfig| {
        let karel = config
            .integrations
            .karel
            .get_or_insert_with(|| KarelSettings {
                currency_id: 1,
                ..KarelSettings::default()
            });
        karel.default_representative = default_representative.or(karel.default_representative);
        karel.delete_collections = delete_collections;
    };
    let credentials = serde_json::json!({ "api_token": token });
    let target = (tenant, SECRET_INTEGRATION);
    let name = crate::connect_tenant(crm, secrets, settings, target, &credentials, set).await?;
    println!("{tenant}: Karel connected, token in {name}");
    Ok(())
}

/// The demo tenant's Karel mapping (the local Karel sandbox's ids and labels).
pub async fn seed_demo(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
) -> Result<()> {
    connect(
        crm,
        secrets,
        settings,
        tenant,
        DEMO_TOKEN,
        Some(8224),
        false,
    )
    .await?;
    let mut config = crate::existing_tenant(crm, tenant).await?;
    if let Some(karel) = config.integrations.karel.as_mut() {
        karel.representatives.insert("user-demo-sales".into(), 8224);
        karel.stages.insert("teklif".into(), 5);
        karel.stages.insert("kazanildi".into(), 6);
        karel.customers.insert("demo-customer-mehmet".into(), 10148);
        karel.custom_fields.insert(
            "proje_tipi".into(),
            KarelCustomField {
                id: 22,
                label: "Proje Tipi".into(),
                kind: KarelFieldKind::Option,
                options: [("yazilim".to_string(), 5)].into(),
            },
        );
    }
    crm.put_tenant(&config, &[]).await?;
    println!(
        "Karel: token {DEMO_TOKEN}, Mehmet Demir -> Karel card 10148, stages teklif/kazanildi"
    );
    Ok(())
}

pub async fn run(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    command: KarelCommand,
) -> Result<()> {
    match command {
        KarelCommand::AddKarel {
            tenant,
            api_token,
            default_representative,
            delete_collections,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            connect(
                crm,
                secrets,
                settings,
                &tenant,
                &api_token,
                default_representative,
                delete_collections,
            )
            .await
        }
        KarelCommand::MapKarel {
            tenant,
            user,
            representative,
            stage,
            stage_id,
            card,
            karel_card,
            field,
            field_id,
            label,
            kind,
            option,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let mut config = crate::existing_tenant(crm, &tenant).await?;
            let karel = config
                .integrations
                .karel
                .as_mut()
                .ok_or_else(|| format!("{tenant} has no Karel connection yet (add-karel)"))?;
            if let (Some(user), Some(id)) = (user, representative) {
                karel.representatives.insert(user, id);
            }
            if let (Some(stage), Some(id)) = (stage, stage_id) {
                karel.stages.insert(stage, id);
            }
            if let (Some(card), Some(id)) = (card, karel_card) {
                karel.customers.insert(card, id);
            }
            if let (Some(field), Some(id), Some(label)) = (field, field_id, label) {
                let kind: KarelFieldKind =
                    serde_json::from_value(serde_json::Value::String(kind.clone()))
                        .map_err(|_| format!("{kind} is not text, date or option"))?;
                let mut options = std::collections::BTreeMap::new();
                for pair in option {
                    let (value, id) = pair
                        .split_once('=')
                        .and_then(|(v, id)| Some((v.to_string(), id.parse::<i64>().ok()?)))
                        .ok_or_else(|| format!("{pair}: write an option as value=id"))?;
                    options.insert(value, id);
                }
                karel.custom_fields.insert(
                    field,
                    KarelCustomField {
                        id,
                        label,
                        kind,
                        options,
                    },
                );
            }
            crm.put_tenant(&config, &[]).await?;
            println!("{tenant}: Karel mapping saved");
            Ok(())
        }
        KarelCommand::SetKarelLink {
            tenant,
            opportunity,
            karel_id,
            release,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let link = crm
                .link(&tenant, &opportunity)
                .await?
                .ok_or_else(|| format!("{opportunity} has no Karel link"))?;
            if link.state != LinkState::Creating {
                return Err(format!("{opportunity} is {:?} in Karel already", link.state).into());
            }
            if release {
                crm.release(&tenant, &opportunity).await?;
                println!("released: the next replay creates {opportunity} in Karel");
            } else if let Some(id) = karel_id {
                // Version 0: the replayed change (any version) then updates it.
                let active = KarelLink {
                    state: LinkState::Active,
                    karel_id: Some(id),
                    version: 0,
                    ..link
                };
                crm.save(&tenant, &active).await?;
                println!("{opportunity} is Karel opportunity {id}; replay the parked changes");
            } else {
                return Err("give --karel-id or --release".into());
            }
            Ok(())
        }
    }
}
