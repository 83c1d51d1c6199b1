//! InsurUp wired for tests: a tenant's account route and secret, the webhook and the worker
//! (InsurUp's REST at a wiremock URL), and requests from the committed samples re-signed with
//! the tenant's secret.

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use lambda_runtime::{Context, LambdaEvent};
use onecrm_adapters::partner::insurup::InsurUpClient;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::tenant::{secret_name, InsurUpSettings, TenantRoute};
use serde_json::json;

use crate::{fixture, unique, Stack, TestQueue, TestTenant};

/// The agent user the tests' InsurUp stand-ins accept.
pub const INSURUP_EMAIL: &str = "agent@acente.example";
pub const INSURUP_PASSWORD: &str = "agent-password";

pub struct InsurUpTenant {
    pub account: String,
    pub secret: String,
}

impl Stack {
    /// The tenant's InsurUp settings, account route and secret; the webhook on `queue`.
    pub async fn insurup(
        &self,
        queue: &TestQueue,
        tenant: &TestTenant,
    ) -> (insurup_policy_webhook::App, InsurUpTenant) {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        let account = unique("acct-");
        config.integrations.insurup = Some(InsurUpSettings {
            account_id: account.clone(),
        });
        crm.put_tenant(&config, &[TenantRoute::InsurUpAccount(account.clone())])
            .await
            .unwrap();
        let secret = unique("whsec-");
        self.secrets()
            .put(
                &secret_name(&self.settings.tenant_secret_prefix, &tenant.id, "insurup"),
                &json!({ "webhook_secret": secret, "email": INSURUP_EMAIL, "password": INSURUP_PASSWORD })
                    .to_string(),
            )
            .await
            .unwrap();
        let wiring = self.wiring();
        let ports = wiring
            .ingress_ports(Arc::new(SqsEventQueue::new(self.sqs(), &queue.url)))
            .unwrap();
        (
            insurup_policy_webhook::App::new(&wiring, ports),
            InsurUpTenant { account, secret },
        )
    }

    /// InsurUp's REST client at `url` (a wiremock server).
    pub fn insurup_client(&self, url: &str) -> Arc<InsurUpClient> {
        let wiring = self.wiring();
        Arc::new(
            InsurUpClient::new(
                wiring.partner().unwrap(),
                wiring.secrets(),
                wiring.dynamo.clone(),
                self.settings.crm_table.clone(),
                self.settings.tenant_secret_prefix.clone(),
            )
            .at(url),
        )
    }

    pub fn insurup_worker(&self, queue: &TestQueue, url: &str) -> insurup_worker::App {
        insurup_worker::App::new(
            &self.wiring(),
            self.insurup_client(url),
            None,
            queue.max_receive_count,
        )
    }

    /// The worker whose purchased policies go to `karel` (a queue of Karel changes).
    pub fn insurup_worker_feeding(
        &self,
        queue: &TestQueue,
        url: &str,
        karel: &TestQueue,
    ) -> insurup_worker::App {
        insurup_worker::App::new(
            &self.wiring(),
            self.insurup_client(url),
            Some(Arc::new(SqsEventQueue::new(self.sqs(), &karel.url))),
            queue.max_receive_count,
        )
    }
}

impl TestQueue {
    pub async fn drain_insurup(&self, worker: &insurup_worker::App) -> usize {
        self.drain_with(|event| async move {
            let response: SqsBatchResponse =
                insurup_worker::handle(worker, LambdaEvent::new(event, Context::default()))
                    .await
                    .unwrap();
            response
        })
        .await
    }
}

/// A committed InsurUp sample for `tenant`'s account, its body edited by `edit`, signed with
/// its secret (`signature` overrides), under `delivery` (default: a fresh one).
pub fn insurup_request(
    name: &str,
    tenant: &InsurUpTenant,
    delivery: Option<&str>,
    edit: impl Fn(String) -> String,
    signature: Option<&str>,
) -> lambda_http::Request {
    let mut event = fixture("insurup-policy-webhook", name);
    let body = edit(event["body"].as_str().unwrap().to_string());
    let signed = signature.map(str::to_string).unwrap_or_else(|| {
        onecrm_domain::meta::sign(tenant.secret.as_bytes(), body.as_bytes())["sha256=".len()..]
            .to_string()
    });
    event["headers"]["x-webhook-signature"] = json!(signed);
    event["headers"]["x-webhook-delivery"] = json!(delivery
        .map(str::to_string)
        .unwrap_or_else(|| unique("dlv-")));
    event["pathParameters"]["account"] = json!(tenant.account);
    event["rawPath"] = json!(format!("/insurup/{}", tenant.account));
    event["body"] = json!(body);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}
