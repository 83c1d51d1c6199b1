//! Logo ERP: connect a tenant (URL and credentials into its `logo` secret, firm, period and
//! rules into its settings), start a sync (queued like the nightly one, or run here), refresh
//! one card, and read the reconciliation reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use onecrm_adapters::config::{self, Settings};
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_adapters::partner::logo::LogoClient;
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::Integration;
use onecrm_domain::logo::arp::ConflictRule;
use onecrm_domain::logo::job::{JobOutcome, LogoJob, LogoSync};
use onecrm_domain::logo::ports::LogoStore;
use onecrm_domain::logo::run::SyncRun;
use onecrm_domain::logo::worker::envelope;
use onecrm_domain::logo::SECRET_INTEGRATION;
use onecrm_domain::tenant::{LogoSettings, TenantId};
use onecrm_domain::time::to_istanbul_display;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The demo tenant's Logo: the sandbox's documented test credentials.
pub const DEMO_CLIENT_SECRET: &str = "demo-logo-secret";
pub const DEMO_PASSWORD: &str = "demo-logo-password";

#[derive(Subcommand)]
pub enum LogoCommand {
    /// Connects a tenant to its Logo REST service (`https://host:32001`, without /api/v1).
    AddLogo {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        url: String,
        #[arg(long)]
        client_id: String,
        #[arg(long, env = "LOGO_CLIENT_SECRET", hide_env_values = true)]
        client_secret: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "LOGO_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        firm: String,
        #[arg(long)]
        period: Option<String>,
        /// logo_wins (default), crm_wins or newest_wins: who wins a customer both sides changed.
        #[arg(long, default_value = "logo_wins")]
        conflict_rule: String,
        /// Leave product stock out (the REST user has no SQL read permission).
        #[arg(long)]
        no_stock: bool,
        /// Where this Logo keeps a contact field, when not the seed's default (repeatable):
        /// `phones=CELL_PHONE,TELEPHONE2`, `email=E_MAIL2`, `address=ADDRESS2`, `city=CITY`.
        #[arg(long = "field")]
        fields: Vec<String>,
    },
    /// Starts a tenant's sync now: queued for logo-sync (like the nightly run), or `--here` in
    /// this process (what `make bench-sync` times).
    LogoSync {
        #[arg(long, default_value = "demo")]
        tenant: String,
        /// Every record, not only those changed since the last run.
        #[arg(long)]
        full: bool,
        #[arg(long)]
        here: bool,
        /// With --here: stop after this many seconds (a cut-off run; run again to resume).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Refreshes one card from Logo now (its cari and invoices): the card's "Logo'dan güncelle".
    LogoRefresh {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        card: String,
    },
    /// `make bench-sync`: the emulator's raw BatchWriteItem rate for exactly the items the sync
    /// wrote (recorded with `ONECRM_RECORD_WRITES`), put again in the same groups into a fresh
    /// table with the CRM table's keys and indexes, 25 a request, timing only the writes.
    #[command(hide = true)]
    BenchRawWrites {
        /// A new table (with the CRM table's keys and indexes) the items are written to.
        #[arg(long)]
        copy_to: String,
        /// The items the sync wrote (`ONECRM_RECORD_WRITES`), one JSON array per write call.
        #[arg(long)]
        replay: std::path::PathBuf,
    },
    /// The last runs' reconciliation reports, newest first.
    LogoReport {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "1")]
        last: usize,
    },
}

pub async fn connect(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
    logo: LogoSettings,
    credentials: serde_json::Value,
) -> Result<()> {
    let set =
        |config: &mut onecrm_domain::tenant::TenantConfig| config.integrations.logo = Some(logo);
    let target = (tenant, SECRET_INTEGRATION);
    let name = crate::connect_tenant(crm, secrets, settings, target, &credentials, set).await?;
    println!("{tenant}: Logo connected (credentials in {name}); nightly sync at 02:00 Istanbul");
    Ok(())
}

/// The demo tenant against the local Logo sandbox (`PARTNER_URL_LOGO` points there).
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
        LogoSettings::new("1", Some("1")),
        serde_json::json!({ "url": "http://logo.local:32001", "client_id": "onecrm",
            "client_secret": DEMO_CLIENT_SECRET, "username": "LOGO", "password": DEMO_PASSWORD }),
    )
    .await
}

fn print_run(run: &SyncRun) {
    let r = &run.report;
    let check = &r.reconciliation;
    let finished = run
        .finished_at
        .map(|f| to_istanbul_display(&f))
        .unwrap_or_else(|| "not finished".into());
    println!(
        "run {} ({}), started {}, finished {finished}, {} invocation(s)",
        run.run_id,
        if run.full { "full" } else { "changes" },
        to_istanbul_display(&run.started_at),
        run.lease.invocations
    );
    for (name, c) in [
        ("cari -> CRM", &r.customers),
        ("CRM -> Logo", &r.created_in_logo),
        ("invoices", &r.invoices),
        ("products", &r.products),
    ] {
        println!(
            "  {name:<12} read {:>7}  created {:>7}  updated {:>7}  skipped {:>5}",
            c.read, c.created, c.updated, c.skipped
        );
    }
    let verdict = if check.matches() { "MATCH" } else { "DIFFER" };
    println!("  reconciliation: {verdict}");
    println!(
        "    cari: Logo {}, in the CRM {}, missing in the CRM {} {:?}",
        check.logo_customers,
        check.logo_customers_in_crm,
        check.logo_customers - check.logo_customers_in_crm,
        check.missing_in_crm
    );
    println!(
        "    CRM customers without a Logo code: {} {:?}",
        check.crm_only, check.crm_only_cards
    );
    let totals = check.invoice_totals();
    println!(
        "    invoices since {}: Logo {} / {} TRY, CRM {} / {} TRY; {} differ",
        check
            .invoices_from
            .map(|d| d.to_string())
            .unwrap_or_default(),
        totals.logo_count,
        totals.logo_gross,
        totals.crm_count,
        totals.crm_gross,
        check.invoice_differences
    );
    for i in &check.invoices_listed {
        println!(
            "      {}: Logo {}, CRM {:?} ({})",
            i.number, i.logo_gross, i.crm_gross, i.reason
        );
    }
    for (day, d) in check.invoice_mismatches() {
        println!(
            "      {day}: Logo {} / {}, CRM {} / {}",
            d.logo_count, d.logo_gross, d.crm_count, d.crm_gross
        );
    }
    println!(
        "    stock: {} products checked, {} differ",
        check.products_checked, check.stock_differences
    );
    for s in &check.stock_listed {
        println!("      {}: Logo {}, CRM {:?}", s.code, s.logo, s.crm);
    }
    let phases: Vec<String> = r
        .phase_ms
        .iter()
        .map(|(phase, ms)| format!("{phase:?} {:.1}s", *ms as f64 / 1000.0))
        .collect();
    println!("  time per phase: {}", phases.join(", "));
    println!("  conflicts: {}", r.conflicts);
    for c in &r.conflicts_listed {
        println!(
            "    {} / card {}: {} kept (Logo changed {}, CRM {})",
            c.logo_code,
            c.card_id,
            c.winner,
            to_istanbul_display(&c.logo_changed_at),
            to_istanbul_display(&c.crm_changed_at)
        );
    }
    println!("  skipped records: {}", r.problems);
    for p in &r.problems_listed {
        println!("    {} ({}): {}", p.field, p.code, p.message);
    }
}

fn job(tenant: &TenantId, full: bool, card: Option<String>) -> LogoJob {
    LogoJob {
        tenant_id: tenant.clone(),
        full,
        refresh_card: card,
        trace_id: uuid::Uuid::now_v7().to_string(),
    }
}

async fn enqueue(wiring: &Wiring, job: &LogoJob) -> Result<()> {
    let queue = wiring.queue("LOGO_QUEUE_URL")?;
    queue.enqueue(&[envelope(job, chrono::Utc::now())]).await?;
    println!("queued for logo-sync (trace {})", job.trace_id);
    Ok(())
}

pub async fn run(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    command: LogoCommand,
) -> Result<()> {
    match command {
        LogoCommand::AddLogo {
            tenant,
            url,
            client_id,
            client_secret,
            username,
            password,
            firm,
            period,
            conflict_rule,
            no_stock,
            fields,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let mut logo = LogoSettings::new(&firm, period.as_deref());
            logo.conflict_rule =
                serde_json::from_value::<ConflictRule>(serde_json::json!(conflict_rule))
                    .map_err(|_| "--conflict-rule is logo_wins, crm_wins or newest_wins")?;
            logo.sync_stock = !no_stock;
            for mapping in fields {
                let (name, value) = mapping
                    .split_once('=')
                    .ok_or("--field is name=LOGO_FIELD (phones, email, address or city)")?;
                let value = value.trim().to_ascii_uppercase();
                match name.trim() {
                    "phones" => {
                        logo.fields.phones =
                            value.split(',').map(|f| f.trim().to_string()).collect()
                    }
                    "email" => logo.fields.email = value,
                    "address" => logo.fields.address = value,
                    "city" => logo.fields.city = value,
                    other => {
                        return Err(
                            format!("--field {other}: use phones, email, address or city").into(),
                        )
                    }
                }
            }
            let credentials = serde_json::json!({ "url": url, "client_id": client_id,
                "client_secret": client_secret, "username": username, "password": password });
            connect(crm, secrets, settings, &tenant, logo, credentials).await
        }
        LogoCommand::LogoSync {
            tenant,
            full,
            here,
            seconds,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let wiring = Wiring::from_env(&sdk)?;
            if !here {
                return enqueue(&wiring, &job(&tenant, full, None)).await;
            }
            let sync = LogoSync {
                tenants: wiring.crm.clone(),
                api: Arc::new(LogoClient::new(
                    wiring.partner()?,
                    wiring.secrets(),
                    settings.tenant_secret_prefix.clone(),
                )),
                store: wiring.batch_crm(),
                crm: wiring.batch_crm(),
                log: wiring.log.clone(),
                runs: wiring.runs(
                    Integration::Logo,
                    config::number("LOGO_LEASE_SECONDS", 120)?,
                ),
            };
            let deadline = Instant::now() + Duration::from_secs(seconds.unwrap_or(365 * 86_400));
            let started = Instant::now();
            match sync.run(&job(&tenant, full, None), deadline).await? {
                JobOutcome::Finished(run) => {
                    print_run(&run);
                    println!(
                        "took {:.2} s, {} items written",
                        started.elapsed().as_secs_f64(),
                        onecrm_adapters::dynamodb::batch::items_written()
                    );
                }
                JobOutcome::OutOfTime(run) => println!(
                    "cut off in {:?} at offset {} after {:.1} s; run again to resume",
                    run.phase,
                    run.offset,
                    started.elapsed().as_secs_f64()
                ),
                JobOutcome::Busy => println!("another invocation holds this tenant's run"),
                JobOutcome::NotConnected => println!("{tenant} has no Logo connection"),
                JobOutcome::Refreshed(_) => {}
            }
            Ok(())
        }
        LogoCommand::LogoRefresh { tenant, card } => {
            let tenant = TenantId::parse(&tenant)?;
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let wiring = Wiring::from_env(&sdk)?;
            enqueue(&wiring, &job(&tenant, false, Some(card))).await
        }
        LogoCommand::BenchRawWrites { copy_to, replay } => {
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let client = aws_sdk_dynamodb::Client::new(&onecrm_adapters::aws::batch_config(&sdk));
            bench_raw_writes(&client, &settings.crm_table, &copy_to, &replay).await
        }
        LogoCommand::LogoReport { tenant, last } => {
            let tenant = TenantId::parse(&tenant)?;
            let runs = crm.reports(&tenant, last.max(1)).await?;
            if runs.is_empty() {
                println!("{tenant}: no finished Logo run yet");
            }
            for run in &runs {
                print_run(run);
            }
            let current: Option<SyncRun> = wiring_runs(crm).current(&tenant).await?;
            if let Some(current) = current {
                if current.finished_at.is_none() {
                    println!(
                        "in progress: run {} in {:?} at offset {}",
                        current.run_id, current.phase, current.offset
                    );
                }
            }
            Ok(())
        }
    }
}

/// Puts the recorded items again, call by call, into a new table `copy_to` (the keys and
/// indexes of `table`), timing only the BatchWriteItem calls.
async fn bench_raw_writes(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    copy_to: &str,
    replay: &std::path::Path,
) -> Result<()> {
    use aws_sdk_dynamodb::types::{GlobalSecondaryIndex, Projection};
    use std::io::BufRead;
    let described = client.describe_table().table_name(table).send().await?;
    let source = described.table.ok_or("no table description")?;
    let mut create = client
        .create_table()
        .table_name(copy_to)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(source.attribute_definitions().to_vec()))
        .set_key_schema(Some(source.key_schema().to_vec()));
    for index in source.global_secondary_indexes() {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.index_name().unwrap_or_default())
                .set_key_schema(Some(index.key_schema().to_vec()))
                .projection(
                    index
                        .projection()
                        .cloned()
                        .unwrap_or_else(|| Projection::builder().build()),
                )
                .build()?,
        );
    }
    create.send().await?;
    let (mut items, mut writing) = (0u64, Duration::ZERO);
    for line in std::io::BufReader::new(std::fs::File::open(replay)?).lines() {
        let values: Vec<serde_json::Value> = serde_json::from_str(&line?)?;
        let call: Vec<_> = values
            .into_iter()
            .filter_map(|v| serde_dynamo::aws_sdk_dynamodb_1::to_item(v).ok())
            .collect();
        items += call.len() as u64;
        let began = Instant::now();
        onecrm_adapters::dynamodb::batch::put_all(client, copy_to, call).await?;
        writing += began.elapsed();
    }
    println!("raw: {items} items in {:.2} s", writing.as_secs_f64());
    Ok(())
}

/// The Logo runs on the admin's table client.
fn wiring_runs(crm: &CrmStore) -> onecrm_domain::nightly::Runs {
    onecrm_domain::nightly::Runs {
        store: Arc::new(crm.handle()),
        integration: Integration::Logo,
        lease: onecrm_domain::nightly::lease(120),
    }
}
