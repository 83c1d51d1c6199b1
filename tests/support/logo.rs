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
