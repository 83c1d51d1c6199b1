//! `logo-sync`: two event sources, one function.
//! - The nightly schedule (EventBridge Scheduler, 02:00 Europe/Istanbul, input
//!   `{"action": "fan_out"}`; `"full": true` for a full resync of every tenant): one job per
//!   tenant with a Logo connection onto the jobs queue.
//! - The jobs queue (batch size 1): runs a tenant's sync page by page until done or until a
//!   minute before the invocation's deadline, then queues its continuation; the one-customer
//!   refresh (`refresh_card`) comes the same way. Failures are reported per message
//!   (`ReportBatchItemFailures`); the last failed delivery goes to the DLQ with an error record.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_nightly;
use onecrm_adapters::partner::logo::LogoClient;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::Integration;
use onecrm_domain::logo::job::LogoSync;
use onecrm_domain::logo::ports::LogoApi;
use onecrm_domain::logo::worker::LogoWorker;
use onecrm_domain::ports::{EventQueue, TenantDirectory};
use serde_json::{json, Value};

pub struct App {
    worker: LogoWorker,
    tenants: Arc<dyn TenantDirectory>,
    log: onecrm_domain::log::IntegrationLog,
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let api = LogoClient::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.settings.tenant_secret_prefix.clone(),
        );
        let queue = wiring.queue("LOGO_QUEUE_URL")?;
        let lease = onecrm_adapters::config::number("LOGO_LEASE_SECONDS", 120)?;
        Self::new(&wiring, Arc::new(api), queue, lease)
    }

    pub fn new(
        wiring: &Wiring,
        api: Arc<dyn LogoApi>,
        queue: Arc<dyn EventQueue>,
        lease_seconds: i64,
    ) -> Result<Self, Error> {
        let store = wiring.batch_crm();
        Ok(Self {
            worker: LogoWorker {
                sync: LogoSync {
                    tenants: wiring.crm.clone(),
                    api,
                    store: store.clone(),
                    crm: store,
                    log: wiring.log.clone(),
                    runs: wiring.runs(Integration::Logo, lease_seconds),
                },
                queue,
            },
            tenants: wiring.crm.clone(),
            log: wiring.log.clone(),
            max_receive_count: wiring.max_receive_count()?,
        })
    }

    pub fn worker(&self) -> &LogoWorker {
        &self.worker
    }
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let fan_out = |input: Value| async move {
        let full = input.get("full").and_then(Value::as_bool) == Some(true);
        let tenants = app.tenants.connected(Integration::Logo).await?;
        let queued = app.worker.fan_out(&tenants, full).await?;
        tracing::info!(queued, full, "logo sync fanned out");
        Ok(json!({ "queued": queued, "full": full }))
    };
    serve_nightly(
        event,
        (Integration::Logo, app.max_receive_count, &app.log),
        |envelope, stop| app.worker.handle(envelope, stop),
        fan_out,
    )
    .await
}
