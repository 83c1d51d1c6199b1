//! `express-member-poll`: two event sources, one function.
//! - The nightly schedule (EventBridge Scheduler, 02:30 Europe/Istanbul, input
//!   `{"action": "fan_out"}`): one poll per tenant with an Express connection onto the jobs
//!   queue.
//! - The jobs queue (batch size 1): runs a tenant's poll page by page until done or until a
//!   minute before the invocation's deadline, then queues its continuation; the CRM's pushes
//!   of segments into Express lists (`express.push`) come the same way. Failures are reported
//!   per message; the last failed delivery goes to the DLQ with an error record.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_nightly;
use onecrm_adapters::partner::express::ExpressClient;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::express::job::ExpressPoll;
use onecrm_domain::express::ports::ExpressApi;
use onecrm_domain::express::push::ExpressPush;
use onecrm_domain::express::worker::ExpressWorker;
use onecrm_domain::log::Integration;
use onecrm_domain::ports::{EventQueue, TenantDirectory};
use serde_json::{json, Value};

pub struct App {
    worker: ExpressWorker,
    tenants: Arc<dyn TenantDirectory>,
    log: onecrm_domain::log::IntegrationLog,
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let api = ExpressClient::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.settings.tenant_secret_prefix.clone(),
            wiring.settings.app_secret_prefix.clone(),
        );
        let queue = wiring.queue("EXPRESS_QUEUE_URL")?;
        let lease = onecrm_adapters::config::number("EXPRESS_LEASE_SECONDS", 120)?;
        Self::new(&wiring, Arc::new(api), queue, lease)
    }

    pub fn new(
        wiring: &Wiring,
        api: Arc<dyn ExpressApi>,
        queue: Arc<dyn EventQueue>,
        lease_seconds: i64,
    ) -> Result<Self, Error> {
        let store = wiring.batch_crm();
        Ok(Self {
            worker: ExpressWorker {
                poll: ExpressPoll {
                    tenants: wiring.crm.clone(),
                    api: api.clone(),
                    store: store.clone(),
                    log: wiring.log.clone(),
                    runs: wiring.runs(Integration::Express, lease_seconds),
                },
                push: ExpressPush {
                    api,
                    store: store.clone(),
                    crm: store,
                },
                queue,
            },
            tenants: wiring.crm.clone(),
            log: wiring.log.clone(),
            max_receive_count: wiring.max_receive_count()?,
        })
    }

    pub fn worker(&self) -> &ExpressWorker {
        &self.worker
    }
}

pub async fn handle(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let fan_out = |_: Value| async move {
        let tenants = app.tenants.connected(Integration::Express).await?;
        let queued = app.worker.fan_out(&tenants).await?;
        tracing::info!(queued, "express poll fanned out");
        Ok(json!({ "queued": queued }))
    };
    serve_nightly(
        event,
        (Integration::Express, app.max_receive_count, &app.log),
        |envelope, stop| app.worker.handle(envelope, stop),
        fan_out,
    )
    .await
}
