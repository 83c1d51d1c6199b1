//! The Logo sync wired for tests: a tenant's Logo settings and credentials, a Logo sandbox
//! (the one `make dev` and `make bench-sync` run, in process), and `logo-sync` against both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use logo_sandbox::{Config, Sandbox};
use onecrm_adapters::partner::logo::LogoClient;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::logo::job::{LogoJob, LogoSync};
use onecrm_domain::logo::worker::envelope;
use onecrm_domain::tenant::{secret_name, LogoSettings};
use serde_json::json;

use crate::{Stack, TestQueue, TestTenant};

/// A Logo sandbox on a free port.
pub async fn logo_sandbox(customers: u64, items: u64, bad_every: u64) -> (String, Arc<Sandbox>) {
    let (address, sandbox) = logo_sandbox::start(Config {
        customers,
        items,
        bad_every,
        ..Config::default()
    })
    .await;
    (format!("http://{address}"), sandbox)
}

impl Stack {
    /// Connects the tenant to the Logo at `url` (firm 1, period 1) with `change` applied to
    /// the settings.
    pub async fn logo(&self, tenant: &TestTenant, url: &str, change: impl Fn(&mut LogoSettings)) {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        let mut settings = LogoSettings::new("1", Some("1"));
        change(&mut settings);
        config.integrations.logo = Some(settings);
        crm.put_tenant(&config, &[]).await.unwrap();
        let sandbox = Config::default();
        self.secrets()
            .put(
                &secret_name(&self.settings.tenant_secret_prefix, &tenant.id, "logo"),
                &json!({ "url": url, "client_id": sandbox.client_id, "client_secret": sandbox.client_secret,
                         "username": sandbox.username, "password": sandbox.password })
                .to_string(),
            )
            .await
            .unwrap();
    }

    /// `logo-sync` with its jobs on `queue` and a run lease of `lease_seconds`.
    pub fn logo_sync(&self, queue: &TestQueue, lease_seconds: i64) -> logo_sync::App {
        let wiring = self.wiring();
        let api = LogoClient::new(
            wiring.partner().unwrap(),
            wiring.secrets(),
            self.settings.tenant_secret_prefix.clone(),
        );
        let jobs = Arc::new(SqsEventQueue::new(self.sqs(), queue.url.clone()));
        logo_sync::App::new(&wiring, Arc::new(api), jobs, lease_seconds).unwrap()
    }
}

/// A job for the tenant (a nightly run, or a full one).
pub fn job(tenant: &TestTenant, full: bool) -> onecrm_domain::envelope::Envelope {
    let job = LogoJob {
        tenant_id: tenant.id.clone(),
        full,
        refresh_card: None,
        trace_id: uuid::Uuid::now_v7().to_string(),
    };
    envelope(&job, chrono::Utc::now())
}

/// Runs the job to its end in this invocation (an hour of time).
pub async fn run_to_end(app: &logo_sync::App, envelope: onecrm_domain::envelope::Envelope) {
    app.worker()
        .handle(envelope, Instant::now() + Duration::from_secs(3600))
        .await
        .unwrap();
}

/// The sync itself, for reading its store.
pub fn sync(app: &logo_sync::App) -> &LogoSync {
    &app.worker().sync
}

/// A test tenant connected to its own Logo sandbox, and `logo-sync` for it.
pub struct LogoWorld {
    pub stack: Stack,
    pub tenant: TestTenant,
    pub queue: TestQueue,
    pub url: String,
    pub sandbox: Arc<Sandbox>,
    pub app: logo_sync::App,
}

/// `customers` cari (3 invoices each) and `items` products, a bad record every `bad_every`,
/// `change` applied to the tenant's Logo settings, a run lease of `lease_seconds`.
pub async fn logo_world(
    (customers, items, bad_every): (u64, u64, u64),
    lease_seconds: i64,
    change: impl Fn(&mut LogoSettings),
) -> LogoWorld {
    let (stack, tenant, queue) = crate::setup(false).await;
    let (url, sandbox) = logo_sandbox(customers, items, bad_every).await;
    stack.logo(&tenant, &url, change).await;
    let app = stack.logo_sync(&queue, lease_seconds);
    LogoWorld {
        stack,
        tenant,
        queue,
        url,
        sandbox,
        app,
    }
}
