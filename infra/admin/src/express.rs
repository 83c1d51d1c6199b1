//! Euromsg Express from the command line: connect a tenant, poll it now (queued, or here in
//! this process: what `make bench-poll` times), push a segment into a list, and read the runs'
//! reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Subcommand;
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::CrmStore;
use onecrm_adapters::partner::express::ExpressClient;
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::Envelope;
use onecrm_domain::express::job::{ExpressPoll, PollJob, PollOutcome};
use onecrm_domain::express::ports::ExpressStore;
use onecrm_domain::express::push::PushJob;
use onecrm_domain::express::run::PollRun;
use onecrm_domain::express::worker::{poll_envelope, push_envelope};
use onecrm_domain::express::{INTEGRATOR_APP, SECRET_INTEGRATION};
use onecrm_domain::log::Integration;
use onecrm_domain::party::Card;
use onecrm_domain::ports::CrmRepository;
use onecrm_domain::tenant::{app_secret_name, ExpressSettings, TenantId};
use onecrm_domain::time::to_istanbul_display;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The sandbox's documented integrator credentials and the demo tenant's API key.
pub const DEMO_CLIENT_NAME: &str = "onecrm";
pub const DEMO_PASSWORD: &str = "express-sandbox-password";
pub const DEMO_API_KEY: &str = "demo-express-key";

#[derive(Subcommand)]
pub enum ExpressCommand {
    /// Connects a tenant to Euromsg Express with the API key it created in its panel (Ana
    /// Sayfa, API, API Anahtarı); `--client-name`/`--password` also store the integrator's own
    /// credentials (one for every tenant).
    AddExpress {
        #[arg(long)]
        tenant: String,
        #[arg(long, env = "EXPRESS_API_KEY", hide_env_values = true)]
        api_key: String,
        /// The lists the nightly poll reads (comma separated; default: every list).
        #[arg(long)]
        lists: Option<String>,
        /// The account has Express as its İYS integrator: members go with their İYS fields.
        #[arg(long)]
        iys: bool,
        #[arg(long)]
        client_name: Option<String>,
        #[arg(long, env = "EXPRESS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Polls a tenant's Express account now: queued (like the nightly run), or `--here`.
    ExpressPoll {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        here: bool,
        /// With --here: stop after this many seconds (a cut-off run; run again to resume).
        #[arg(long)]
        seconds: Option<u64>,
    },
    /// Queues a push of cards into a segment's Express list (created on first use).
    ExpressPush {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        segment: String,
        #[arg(long)]
        list_name: Option<String>,
        /// Card ids (repeatable).
        #[arg(long = "card")]
        cards: Vec<String>,
    },
    /// `make bench-poll`: customer cards carrying the sandbox's first `count` member addresses.
    #[command(hide = true)]
    SeedExpressCards {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long)]
        count: u32,
    },
    /// The last polls' reports, newest first.
    ExpressReport {
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
    express: ExpressSettings,
    api_key: &str,
) -> Result<()> {
    let set = |config: &mut onecrm_domain::tenant::TenantConfig| {
        config.integrations.express = Some(express)
    };
    let credentials = serde_json::json!({ "api_key": api_key });
    let target = (tenant, SECRET_INTEGRATION);
    let name = crate::connect_tenant(crm, secrets, settings, target, &credentials, set).await?;
    println!(
        "{tenant}: Euromsg Express connected (API key in {name}); nightly poll at 02:30 Istanbul"
    );
    Ok(())
}

async fn integrator(
    secrets: &SecretsManagerStore,
    settings: &Settings,
    client: &str,
    password: &str,
) -> Result<()> {
    let name = app_secret_name(
        &settings.app_secret_prefix,
        SECRET_INTEGRATION,
        INTEGRATOR_APP,
    );
    let value = serde_json::json!({ "client_name": client, "password": password });
    secrets.put(&name, &value.to_string()).await?;
    println!("Express integrator credentials in {name}");
    Ok(())
}

/// The demo tenant against the local Express sandbox (`PARTNER_URL_EXPRESS` points there).
pub async fn seed_demo(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    tenant: &TenantId,
) -> Result<()> {
    integrator(secrets, settings, DEMO_CLIENT_NAME, DEMO_PASSWORD).await?;
    let express = ExpressSettings {
        list_ids: vec![],
        iys_enabled: true,
        page_size: 500,
    };
    connect(crm, secrets, settings, tenant, express, DEMO_API_KEY).await?;
    // A few customers who are members of the sandbox's list, so a poll lands on cards.
    for i in 0..5u32 {
        let mut card = Card::person_customer(
            &format!("uye-{i}"),
            &format!("Üye{i} Yılmaz"),
            vec![],
            chrono::Utc::now(),
        );
        card.emails = vec![format!("uye{i}@ornek-express.com.tr")];
        crm.create_card(tenant, &card).await?;
    }
    Ok(())
}

fn print_run(run: &PollRun) {
    let r = &run.report;
    let finished = run
        .finished_at
        .map(|f| to_istanbul_display(&f))
        .unwrap_or_else(|| "not finished".into());
    println!(
        "run {}, started {}, finished {finished}, {} invocation(s)",
        run.run_id,
        to_istanbul_display(&run.started_at),
        run.lease.invocations
    );
    if let Some(reason) = &run.needs_action {
        println!("  NEEDS ACTION: {reason}");
    }
    println!(
        "  lists {}  members read {}  not in the CRM {}  consents set {} (ONAY {}, RET {})",
        r.lists,
        r.members_read,
        r.members_not_in_crm,
        r.consents_set,
        r.consents_onay,
        r.consents_ret
    );
    println!(
        "  campaigns {}  reported {}  report rows {}  timeline entries written {}  skipped {}",
        r.campaigns, r.campaigns_reported, r.report_rows, r.entries_written, r.skipped
    );
    for p in &r.problems_listed {
        println!("    skipped {}: {} ({})", p.field, p.message, p.code);
    }
    let phases: Vec<String> = r
        .phase_ms
        .iter()
        .map(|(p, ms)| format!("{p:?} {:.1} s", *ms as f64 / 1000.0))
        .collect();
    println!("  time: {}", phases.join(", "));
}

async fn enqueue(wiring: &Wiring, envelope: Envelope) -> Result<()> {
    let queue = wiring.queue("EXPRESS_QUEUE_URL")?;
    queue.enqueue(std::slice::from_ref(&envelope)).await?;
    println!(
        "queued for express-member-poll (trace {})",
        envelope.trace_id
    );
    Ok(())
}

pub async fn run(
    crm: &CrmStore,
    secrets: &SecretsManagerStore,
    settings: &Settings,
    command: ExpressCommand,
) -> Result<()> {
    match command {
        ExpressCommand::AddExpress {
            tenant,
            api_key,
            lists,
            iys,
            client_name,
            password,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            if let (Some(client), Some(password)) = (&client_name, &password) {
                integrator(secrets, settings, client, password).await?;
            }
            let list_ids = lists
                .map(|l| {
                    l.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let express = ExpressSettings {
                list_ids,
                iys_enabled: iys,
                page_size: 500,
            };
            connect(crm, secrets, settings, &tenant, express, &api_key).await
        }
        ExpressCommand::ExpressPoll {
            tenant,
            here,
            seconds,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let job = PollJob {
                tenant_id: tenant.clone(),
                trace_id: uuid::Uuid::now_v7().to_string(),
            };
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let wiring = Wiring::from_env(&sdk)?;
            if !here {
                return enqueue(&wiring, poll_envelope(&job, chrono::Utc::now())).await;
            }
            let store = wiring.batch_crm();
            let poll = ExpressPoll {
                tenants: wiring.crm.clone(),
                api: Arc::new(ExpressClient::new(
                    wiring.partner()?,
                    wiring.secrets(),
                    settings.tenant_secret_prefix.clone(),
                    settings.app_secret_prefix.clone(),
                )),
                store,
                log: wiring.log.clone(),
                runs: wiring.runs(
                    Integration::Express,
                    onecrm_adapters::config::number("EXPRESS_LEASE_SECONDS", 120)?,
                ),
            };
            let deadline = Instant::now() + Duration::from_secs(seconds.unwrap_or(365 * 86_400));
            let started = Instant::now();
            match poll.run(&job, deadline).await? {
                PollOutcome::Finished(run) => {
                    print_run(&run);
                    println!(
                        "took {:.2} s, {} items written",
                        started.elapsed().as_secs_f64(),
                        onecrm_adapters::dynamodb::batch::items_written()
                    );
                }
                PollOutcome::OutOfTime(run) => {
                    println!(
                        "out of time in {:?} (list or campaign {}, page {}); run again to resume",
                        run.phase, run.index, run.page
                    )
                }
                PollOutcome::Busy => println!("{tenant}: another invocation holds the poll"),
                PollOutcome::NotConnected => println!("{tenant}: no Express connection"),
            }
            Ok(())
        }
        ExpressCommand::ExpressPush {
            tenant,
            segment,
            list_name,
            cards,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let wiring = Wiring::from_env(&sdk)?;
            let job = PushJob {
                tenant_id: tenant,
                trace_id: uuid::Uuid::now_v7().to_string(),
                segment,
                list_name,
                card_ids: cards,
                remove_card_ids: vec![],
            };
            enqueue(&wiring, push_envelope(&job, chrono::Utc::now())).await
        }
        ExpressCommand::SeedExpressCards { tenant, count } => {
            use futures::stream::{self, StreamExt, TryStreamExt};
            let tenant = TenantId::parse(&tenant)?;
            stream::iter(0..count)
                .map(|i| {
                    let tenant = &tenant;
                    async move {
                        let mut card = Card::person_customer(
                            &format!("uye-{i}"),
                            &format!("Üye{i} Yılmaz"),
                            vec![],
                            chrono::Utc::now(),
                        );
                        card.emails = vec![format!("uye{i}@ornek-express.com.tr")];
                        crm.create_card(tenant, &card).await.map(|_| ())
                    }
                })
                .buffer_unordered(16)
                .try_collect::<Vec<()>>()
                .await?;
            println!("{count} cards with member addresses");
            Ok(())
        }
        ExpressCommand::ExpressReport { tenant, last } => {
            let tenant = TenantId::parse(&tenant)?;
            let runs = crm.reports(&tenant, last.max(1)).await?;
            if runs.is_empty() {
                println!("{tenant}: no finished Express poll yet");
            }
            for run in &runs {
                print_run(run);
            }
            Ok(())
        }
    }
}
