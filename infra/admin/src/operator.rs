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
    /// `make bench-logs`: fills the log table and times the log list route.
    #[command(hide = true)]
    BenchLogs {
        #[arg(long, default_value = "demo")]
        tenant: String,
        #[arg(long, default_value = "100000")]
        records: u32,
        #[arg(long, default_value = "200")]
        requests: u32,
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
        OperatorCommand::BenchLogs {
            tenant,
            records,
            requests,
        } => {
            let tenant = TenantId::parse(&tenant)?;
            let sdk = onecrm_adapters::aws::sdk_config().await;
            let wiring = onecrm_adapters::wiring::Wiring::from_env(&sdk)?;
            bench_log_route(&wiring, &tenant, records, requests).await
        }
    }
}

/// `make bench-logs`: `records` log records of the tenant in the log table (a day of them,
/// across integrations, one in twenty an error), then `requests` calls of the log list route
/// through crm-api's operator API in this process: their p50, p95 and slowest.
pub async fn bench_log_route(
    wiring: &onecrm_adapters::wiring::Wiring,
    tenant: &TenantId,
    records: u32,
    requests: u32,
) -> Result<()> {
    use onecrm_domain::envelope::TraceId;
    use onecrm_domain::log::{Integration, LogDirection, LogEntry, LogResult};
    use std::collections::HashMap;
    use std::time::Instant;

    let integrations = [
        Integration::WhatsApp,
        Integration::MetaLeadAds,
        Integration::WebForm,
        Integration::Pbx,
    ];
    let store = wiring.log_reader();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..records {
        let failed = i % 20 == 7;
        let entry = LogEntry::new(
            tenant.clone(),
            integrations[(i % 4) as usize],
            LogDirection::Inbound,
            "bench.event",
            if failed {
                LogResult::Error
            } else {
                LogResult::Success
            },
            TraceId::new(uuid::Uuid::now_v7().to_string()),
        )
        .starts_trace(chrono::Utc::now());
        let entry = match failed {
            true => entry.error(
                "invalid_payload",
                "entry[0].changes[0].value.messages[0].from: missing",
            ),
            false => entry,
        };
        batch.push(wiring.log.prepare(entry));
        if batch.len() == 1000 || i + 1 == records {
            store.put_all(&batch).await?;
            batch.clear();
        }
    }
    println!(
        "{records} log records written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let key = format!("ocrm_{}", uuid::Uuid::new_v4().simple());
    let crm = &wiring.crm;
    store_key(crm, tenant, &key).await?;
    let raw_events = onecrm_adapters::config::required("RAW_EVENT_TABLE")?;
    let dead_letters = onecrm_adapters::dead_letters::SqsDeadLetters::from_env(&wiring.sdk);
    let app = crm_api::App::new(wiring, &raw_events, std::sync::Arc::new(dead_letters));
    // The screen's calls: an integration's newest page, its errors, an error code, the next page.
    let filters: [&[(&str, &str)]; 4] = [
        &[("integration", "whatsapp")],
        &[("integration", "web_form"), ("result", "error")],
        &[("error_code", "invalid_payload")],
        &[("integration", "pbx"), ("limit", "200")],
    ];
    let mut times = Vec::with_capacity(requests as usize);
    let mut cursor: Option<String> = None;
    for n in 0..requests {
        let mut query: HashMap<String, String> = filters[(n % 4) as usize]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if n % 8 == 0 {
            if let Some(next) = cursor.take() {
                query.insert("cursor".into(), next);
                query.insert("integration".into(), "whatsapp".into());
                query.remove("result");
                query.remove("error_code");
            }
        }
        let trace = TraceId::new(format!("bench-{n}"));
        let began = Instant::now();
        let reply = app
            .api()
            .handle(onecrm_domain::operator::api::ApiRequest {
                method: "GET",
                path: "/v1/logs",
                query: &query,
                api_key: Some(&key),
                trace: &trace,
                body: "",
            })
            .await;
        times.push(began.elapsed().as_secs_f64() * 1000.0);
        if reply.status != 200 {
            return Err(format!("request {n} answered {}: {}", reply.status, reply.body).into());
        }
        if query.get("integration").map(String::as_str) == Some("whatsapp") {
            let body: serde_json::Value = serde_json::from_str(&reply.body)?;
            cursor = body["next"].as_str().map(str::to_string);
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "log list route, {requests} requests over {records} records: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.95),
        at(1.0)
    );
    Ok(())
}

async fn store_key(crm: &CrmStore, tenant: &TenantId, key: &str) -> Result<()> {
    store(crm, tenant, "bench", key, vec![Scope::Logs]).await
}
