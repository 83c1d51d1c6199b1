//! The Express poll wired for tests: the integrator's and a tenant's credentials, an Express
//! sandbox (the one `make dev` and `make bench-poll` run, in process), and
//! `express-member-poll` against both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use express_sandbox::{Config, Sandbox};
use onecrm_adapters::partner::express::ExpressClient;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::envelope::Envelope;
use onecrm_domain::express::job::PollJob;
use onecrm_domain::express::run::PollRun;
use onecrm_domain::express::worker::poll_envelope;
use onecrm_domain::express::{INTEGRATOR_APP, SECRET_INTEGRATION};
use onecrm_domain::party::Card;
use onecrm_domain::tenant::{app_secret_name, secret_name, ExpressSettings};
use serde_json::json;

use crate::{Stack, TestQueue, TestTenant};

/// A test tenant connected to its own Express sandbox, and `express-member-poll` for it.
pub struct ExpressWorld {
    pub stack: Stack,
    pub tenant: TestTenant,
    pub queue: TestQueue,
    pub sandbox: Arc<Sandbox>,
    pub app: express_member_poll::App,
}

impl Stack {
    /// Connects the tenant to Express with `api_key`, the integrator's credentials beside.
    pub async fn express(&self, tenant: &TestTenant, api_key: &str, settings: ExpressSettings) {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        config.integrations.express = Some(settings);
        crm.put_tenant(&config, &[]).await.unwrap();
        let secrets = self.secrets();
        let sandbox = Config::default();
        let integrator = app_secret_name(
            &self.settings.app_secret_prefix,
            SECRET_INTEGRATION,
            INTEGRATOR_APP,
        );
        secrets
            .put(
                &integrator,
                &json!({ "client_name": sandbox.client_name, "password": sandbox.password })
                    .to_string(),
            )
            .await
            .unwrap();
        let account = secret_name(
            &self.settings.tenant_secret_prefix,
            &tenant.id,
            SECRET_INTEGRATION,
        );
        secrets
            .put(&account, &json!({ "api_key": api_key }).to_string())
            .await
            .unwrap();
    }

    /// A customer card carrying the generated member `i`'s address.
    pub async fn express_card(&self, tenant: &TestTenant, i: u64) -> Card {
        let mut card = Card::person_customer(
            &format!("uye-{i}"),
            &format!("Üye{i} Yılmaz"),
            vec![],
            chrono::Utc::now(),
        );
        card.emails = vec![format!("uye{i}@ornek-express.com.tr")];
        onecrm_domain::ports::CrmRepository::create_card(&self.crm(), &tenant.id, &card)
            .await
            .unwrap();
        card
    }
}

/// `members` generated members (a bad address every `bad_every`), reports of `report_rows`,
/// the tenant's API key `api_key`, pages of `page_size`.
pub async fn express_world(
    members: u64,
    bad_every: u64,
    report_rows: u64,
    api_key: &str,
    page_size: u32,
) -> ExpressWorld {
    let (stack, tenant, queue) = crate::setup(false).await;
    let (address, sandbox) = express_sandbox::start(Config {
        members,
        bad_every,
        report_rows,
        ..Config::default()
    })
    .await;
    let settings = ExpressSettings {
        list_ids: vec![],
        iys_enabled: true,
        page_size,
    };
    stack.express(&tenant, api_key, settings).await;
    let wiring = stack.wiring();
    let api = ExpressClient::new(
        wiring.partner().unwrap(),
        wiring.secrets(),
        stack.settings.tenant_secret_prefix.clone(),
        stack.settings.app_secret_prefix.clone(),
    )
    .at(&format!("http://{address}"));
    let jobs = Arc::new(SqsEventQueue::new(stack.sqs(), queue.url.clone()));
    let app = express_member_poll::App::new(&wiring, Arc::new(api), jobs, 60).unwrap();
    ExpressWorld {
        stack,
        tenant,
        queue,
        sandbox,
        app,
    }
}

/// A nightly poll job for the tenant.
pub fn poll_job(tenant: &TestTenant) -> Envelope {
    let job = PollJob {
        tenant_id: tenant.id.clone(),
        trace_id: uuid::Uuid::now_v7().to_string(),
    };
    poll_envelope(&job, chrono::Utc::now())
}

/// Runs a poll to its end in this invocation; the run it left.
pub async fn poll_night(world: &ExpressWorld) -> PollRun {
    world
        .app
        .worker()
        .handle(
            poll_job(&world.tenant),
            Instant::now() + Duration::from_secs(3600),
        )
        .await
        .unwrap();
    latest_poll(world).await
}

pub async fn latest_poll(world: &ExpressWorld) -> PollRun {
    onecrm_domain::express::ports::ExpressStore::reports(&world.stack.crm(), &world.tenant.id, 1)
        .await
        .unwrap()
        .remove(0)
}
