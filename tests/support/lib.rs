//! Test support against the local emulator (`make test` starts it and exports the stack's
//! environment). Every test gets its own tenant and its own queue pair, cloned from the
//! template's queue, so tests run in parallel on one emulator without seeing each other.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use onecrm_adapters::config::Settings;
use onecrm_adapters::dynamodb::{ArchiveStore, CrmStore, LogStore};
use onecrm_adapters::secrets::SecretsManagerStore;
use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::meta::sign;
use onecrm_domain::page::PageRequest;
use onecrm_domain::tenant::{
    app_secret_name, secret_name, IntegrationSettings, TenantConfig, TenantId, TenantRoute,
    WhatsAppSettings,
};
use onecrm_domain::whatsapp::{WhatsAppSecrets, SECRET_INTEGRATION};
use serde_json::{json, Value};

/// The demo tenant's ids as they appear in the committed sample events.
pub const DEMO_PHONE_NUMBER_ID: &str = "106540352242922";
pub const DEMO_WABA_ID: &str = "102290129340398";
/// The demo Meta app, whose App Secret `demo-app-secret` signs the committed samples.
pub const DEMO_META_APP_ID: &str = "1000000000000001";

pub struct Stack {
    pub sdk: SdkConfig,
    pub settings: Settings,
    /// The queue `template.yaml` declares; tests clone its attributes.
    pub template_queue_url: String,
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the tests with `make test`, which starts the emulator and provisions the stack"))
}

pub async fn stack() -> Stack {
    let settings =
        Settings::from_env().unwrap_or_else(|e| panic!("{e}: run the tests with `make test`"));
    env("AWS_ENDPOINT_URL");
    Stack {
        sdk: onecrm_adapters::aws::sdk_config().await,
        settings,
        template_queue_url: env("WHATSAPP_QUEUE_URL"),
    }
}

pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub struct TestTenant {
    pub id: TenantId,
    pub phone_number_id: String,
    pub waba_id: String,
    /// Each test tenant has its own Meta app, so tests never share a secret.
    pub app_id: String,
    pub app_secret: String,
    pub verify_token: String,
}

pub struct TestQueue {
    pub url: String,
    pub dlq_url: String,
    pub max_receive_count: u32,
    client: aws_sdk_sqs::Client,
}

impl Stack {
    pub fn crm(&self) -> CrmStore {
        CrmStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.settings.crm_table,
        )
    }

    pub fn logs(&self) -> LogStore {
        LogStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            &self.settings.log_table,
        )
    }

    pub fn archive(&self) -> ArchiveStore {
        ArchiveStore::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            env("RAW_EVENT_TABLE"),
        )
    }

    pub fn secrets(&self) -> SecretsManagerStore {
        SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&self.sdk))
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// A fresh tenant with its routes and secret, written through the real adapters.
    pub async fn tenant(&self, task_for_new_leads: bool) -> TestTenant {
        let digits: String = uuid::Uuid::new_v4()
            .as_u128()
            .to_string()
            .chars()
            .take(15)
            .collect();
        let tenant = TestTenant {
            id: TenantId::parse(&unique("t-")).unwrap(),
            phone_number_id: digits.clone(),
            waba_id: format!("9{}", &digits[1..]),
            app_id: format!("8{}", &digits[1..]),
            app_secret: unique("secret-"),
            verify_token: unique("verify-"),
        };
        self.add_tenant(tenant, task_for_new_leads).await
    }

    /// Another fresh tenant connected through `app`'s Meta app (a shared app: one secret).
    pub async fn tenant_sharing_app(&self, app: &TestTenant) -> TestTenant {
        let mut tenant = self.tenant(false).await;
        tenant.app_id = app.app_id.clone();
        tenant.app_secret = app.app_secret.clone();
        self.add_tenant(tenant, false).await
    }

    /// The documented demo tenant, whose test secret signs the committed sample events.
    pub async fn demo_tenant(&self) -> TestTenant {
        let tenant = TestTenant {
            id: TenantId::parse("demo").unwrap(),
            phone_number_id: DEMO_PHONE_NUMBER_ID.into(),
            waba_id: DEMO_WABA_ID.into(),
            app_id: DEMO_META_APP_ID.into(),
            app_secret: "demo-app-secret".into(),
            verify_token: "demo-verify-token".into(),
        };
        self.add_tenant(tenant, true).await
    }

    /// The card the sample events' sender (+90 533 123 45 67) landed on, if any.
    pub async fn sender_card(&self, tenant: &TenantId) -> Option<onecrm_domain::party::CardRef> {
        let phone = onecrm_domain::phone::PhoneNumber::parse("+905331234567").unwrap();
        self.crm()
            .find_card(tenant, &onecrm_domain::party::IdentityKey::Phone(phone))
            .await
            .unwrap()
    }

    /// Registers an edited test tenant (its routes, app and secrets).
    pub async fn add_tenant_for_test(&self, tenant: TestTenant) -> TestTenant {
        self.add_tenant(tenant, false).await
    }

    async fn add_tenant(&self, tenant: TestTenant, task_for_new_leads: bool) -> TestTenant {
        let config = TenantConfig {
            tenant_id: tenant.id.clone(),
            name: "Test Sigorta".into(),
            default_owner: Some("user-sales-1".into()),
            integrations: IntegrationSettings {
                whatsapp: Some(WhatsAppSettings {
                    phone_number_id: tenant.phone_number_id.clone(),
                    display_phone_number: "908503031234".into(),
                    meta_app_id: tenant.app_id.clone(),
                    create_lead_for_unknown_numbers: true,
                    create_task_for_new_lead: task_for_new_leads,
                }),
                ..Default::default()
            },
            created_at: chrono::Utc::now(),
        };
        let routes = [
            TenantRoute::WhatsAppPhoneNumberId(tenant.phone_number_id.clone()),
            TenantRoute::WhatsAppBusinessAccount(tenant.waba_id.clone()),
            TenantRoute::meta_verify_token(&tenant.verify_token),
        ];
        self.crm().put_tenant(&config, &routes).await.unwrap();
        self.secrets()
            .put(
                &app_secret_name(&self.settings.app_secret_prefix, "meta", &tenant.app_id),
                &json!({ "app_secret": tenant.app_secret }).to_string(),
            )
            .await
            .unwrap();
        let secrets = WhatsAppSecrets {
            verify_token: tenant.verify_token.clone(),
            access_token: None,
        };
        SecretsManagerStore::new(aws_sdk_secretsmanager::Client::new(&self.sdk))
            .put(
                &secret_name(
                    &self.settings.tenant_secret_prefix,
                    &tenant.id,
                    SECRET_INTEGRATION,
                ),
                &serde_json::to_string(&secrets).unwrap(),
            )
            .await
            .unwrap();
        tenant
    }

    /// A queue and DLQ with the template queue's attributes and redrive policy.
    pub async fn queue(&self) -> TestQueue {
        let client = self.sqs();
        let attributes = client
            .get_queue_attributes()
            .queue_url(&self.template_queue_url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        let redrive: Value = serde_json::from_str(
            attributes
                .get(&QueueAttributeName::RedrivePolicy)
                .expect("template queue has a redrive policy"),
        )
        .unwrap();
        let max_receive_count = redrive["maxReceiveCount"]
            .to_string()
            .trim_matches('"')
            .parse()
            .unwrap();
        let name = unique("whatsapp-events-");
        let dlq_url = client
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()
            .remove(&QueueAttributeName::QueueArn)
            .unwrap();
        let url = client
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                attributes[&QueueAttributeName::VisibilityTimeout].clone(),
            )
            .attributes(
                QueueAttributeName::RedrivePolicy,
                json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count })
                    .to_string(),
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        TestQueue {
            url,
            dlq_url,
            max_receive_count,
            client,
        }
    }

    pub fn wiring(&self) -> Wiring {
        Wiring::new(&self.sdk, self.settings.clone())
    }

    pub fn inbound(&self, queue: &TestQueue) -> whatsapp_inbound::App {
        self.inbound_with_default_app(queue, None)
    }

    /// The webhook with the deployment's own Meta app set (events for unregistered numbers
    /// signed by it are held).
    pub fn inbound_with_default_app(
        &self,
        queue: &TestQueue,
        app: Option<&str>,
    ) -> whatsapp_inbound::App {
        let wiring = self.wiring();
        let ports = wiring
            .ingress_ports(Arc::new(SqsEventQueue::new(self.sqs(), &queue.url)))
            .unwrap();
        whatsapp_inbound::App::new(&wiring, ports, app.map(str::to_string))
    }

    pub fn worker(&self, queue: &TestQueue) -> whatsapp_worker::App {
        whatsapp_worker::App::new(&self.wiring(), queue.max_receive_count).unwrap()
    }

    /// The Graph client pointed at `graph_url` (a wiremock server): passed, never through the
    /// process environment, which tests running in parallel would share.
    pub fn graph_leads(&self, graph_url: &str) -> Arc<onecrm_adapters::partner::graph::GraphLeads> {
        let wiring = self.wiring();
        Arc::new(
            onecrm_adapters::partner::graph::GraphLeads::new(
                wiring.partner().unwrap(),
                wiring.secrets(),
                self.settings.tenant_secret_prefix.clone(),
                "v21.0",
            )
            .at(graph_url),
        )
    }

    /// `meta-lead-worker` calling Graph at `graph_url`.
    pub fn meta_lead_worker(&self, queue: &TestQueue, graph_url: &str) -> meta_lead_worker::App {
        meta_lead_worker::App::new(
            &self.wiring(),
            self.graph_leads(graph_url),
            queue.max_receive_count,
        )
        .unwrap()
    }
}

/// What one emulated event-source poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    pub received: usize,
    pub failed: usize,
}

impl TestQueue {
    /// One poll of Lambda's SQS event source: receive up to 10, invoke the worker with the
    /// event Lambda would send, delete all but the reported failures. `visibility` overrides the
    /// queue's timeout so failures come back at once in tests.
    pub async fn poll(&self, worker: &whatsapp_worker::App, visibility: Option<i32>) -> Poll {
        self.poll_with(visibility, |event| async move {
            whatsapp_worker::handle(worker, LambdaEvent::new(event, Context::default()))
                .await
                .unwrap()
        })
        .await
    }

    /// [`Self::poll`] for any worker: `invoke` runs the batch as Lambda would.
    pub async fn poll_with<F, Fut>(&self, visibility: Option<i32>, invoke: F) -> Poll
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>,
    {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Poll::default();
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: HashMap<String, String> =
                    m.attributes.clone().unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect();
                json!({
                    "messageId": m.message_id, "receiptHandle": m.receipt_handle, "body": m.body,
                    "attributes": attributes, "messageAttributes": {}, "md5OfBody": m.md5_of_body,
                    "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:test", "awsRegion": "eu-central-1"
                })
            })
            .collect();
        let event: SqsEvent = serde_json::from_value(json!({ "Records": records })).unwrap();
        let response = invoke(event).await;
        let failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for m in &messages {
            if !failed.contains(m.message_id.as_ref().unwrap()) {
                self.client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(m.receipt_handle.clone().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        Poll {
            received: messages.len(),
            failed: failed.len(),
        }
    }

    /// Polls with `invoke` (a worker's batch handler) until the queue is empty (bounded),
    /// returning how many messages were processed.
    pub async fn drain_with<F, Fut>(&self, invoke: F) -> usize
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = aws_lambda_events::event::sqs::SqsBatchResponse>,
    {
        let mut total = 0;
        for _ in 0..20 {
            let poll = self.poll_with(None, &invoke).await;
            if poll.received == 0 {
                break;
            }
            total += poll.received;
        }
        total
    }

    pub async fn drain_meta_leads(&self, worker: &meta_lead_worker::App) -> usize {
        self.drain_with(|event| async move {
            meta_lead_worker::handle(worker, LambdaEvent::new(event, Context::default()))
                .await
                .unwrap()
        })
        .await
    }

    pub async fn drain_web_forms(&self, worker: &web_form_worker::App) -> usize {
        self.drain_with(|event| async move {
            web_form_worker::handle(worker, LambdaEvent::new(event, Context::default()))
                .await
                .unwrap()
        })
        .await
    }

    pub async fn drain(&self, worker: &whatsapp_worker::App) -> usize {
        self.drain_with(|event| async move {
            whatsapp_worker::handle(worker, LambdaEvent::new(event, Context::default()))
                .await
                .unwrap()
        })
        .await
    }

    pub async fn depth(&self, url: &str) -> usize {
        let attributes = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attributes
            .values()
            .map(|v| v.parse::<usize>().unwrap_or(0))
            .sum()
    }

    /// The body of the next queued message, left on the queue (invisible for its timeout).
    pub async fn peek_envelope(&self) -> onecrm_domain::envelope::Envelope {
        let body = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap()[0]
            .body
            .clone()
            .unwrap();
        onecrm_domain::envelope::Envelope::from_json(&body).unwrap()
    }

    pub async fn send_raw(&self, body: &str) {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

/// The best card of one identity, as the workers' matcher picks it.
#[allow(async_fn_in_trait)]
pub trait FindCard {
    async fn find_card(
        &self,
        tenant: &TenantId,
        key: &onecrm_domain::party::IdentityKey,
    ) -> Result<Option<onecrm_domain::party::CardRef>, onecrm_domain::error::PortError>;
}

impl FindCard for CrmStore {
    async fn find_card(
        &self,
        tenant: &TenantId,
        key: &onecrm_domain::party::IdentityKey,
    ) -> Result<Option<onecrm_domain::party::CardRef>, onecrm_domain::error::PortError> {
        use onecrm_domain::ports::CrmRepository;
        let mut cards = self.find_cards(tenant, key).await?;
        onecrm_domain::identity::rank_cards(&mut cards);
        Ok(cards.into_iter().next())
    }
}

/// A stack, a fresh tenant (with or without tasks for new leads) and its own queue pair.
pub async fn setup(task_for_new_leads: bool) -> (Stack, TestTenant, TestQueue) {
    let stack = stack().await;
    let tenant = stack.tenant(task_for_new_leads).await;
    let queue = stack.queue().await;
    (stack, tenant, queue)
}

/// A body edit for [`signed_request`] that changes the JSON (the result is re-signed).
pub fn edit_json(change: impl Fn(&mut Value)) -> impl Fn(String) -> String {
    move |body| {
        let mut v: Value = serde_json::from_str(&body).unwrap();
        change(&mut v);
        v.to_string()
    }
}

/// A time range around now, for log and lead queries in tests.
pub fn around_now() -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let now = chrono::Utc::now();
    (
        now - chrono::Duration::hours(1),
        now + chrono::Duration::hours(1),
    )
}

impl Stack {
    /// The tenant's log records of one integration in the last hour, newest first (all pages).
    pub async fn integration_logs(
        &self,
        tenant: &TenantId,
        integration: onecrm_domain::log::Integration,
    ) -> Vec<onecrm_domain::log::LogRecord> {
        use onecrm_domain::ports::LogReader;
        let (from, to) = around_now();
        let logs = self.logs();
        onecrm_domain::page::collect_all(50, |page| {
            logs.by_integration(tenant, integration, from, to, page)
        })
        .await
        .unwrap()
    }

    /// The tenant's log records with this error code in the last hour.
    pub async fn error_logs(
        &self,
        tenant: &TenantId,
        code: &str,
    ) -> Vec<onecrm_domain::log::LogRecord> {
        use onecrm_domain::ports::LogReader;
        let (from, to) = around_now();
        self.logs()
            .by_error_code(tenant, code, from, to, PageRequest::first(50))
            .await
            .unwrap()
            .items
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A committed sample event (`events/<function>/<name>.json`).
pub fn fixture(function: &str, name: &str) -> Value {
    let path = events_dir().join(function).join(format!("{name}.json"));
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// A sample API Gateway event re-pointed at `tenant` (its ids swapped in), optionally edited,
/// and signed with the tenant's App Secret: exactly what Meta would send that tenant.
pub fn signed_request(
    name: &str,
    tenant: &TestTenant,
    edit: impl Fn(String) -> String,
) -> lambda_http::Request {
    let mut event = fixture("whatsapp-inbound", name);
    let body = event["body"]
        .as_str()
        .expect("a POST sample")
        .replace(DEMO_PHONE_NUMBER_ID, &tenant.phone_number_id)
        .replace(DEMO_WABA_ID, &tenant.waba_id);
    let body = edit(body);
    event["headers"]["x-hub-signature-256"] =
        json!(sign(tenant.app_secret.as_bytes(), body.as_bytes()));
    event["body"] = json!(body);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

/// A sample event as committed (its signature made with the demo tenant's secret).
pub fn raw_request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&fixture("whatsapp-inbound", name).to_string()).unwrap()
}

pub fn body_json(response: &lambda_http::Response<lambda_http::Body>) -> Value {
    match response.body() {
        lambda_http::Body::Text(text) => {
            serde_json::from_str(text).unwrap_or(Value::String(text.clone()))
        }
        lambda_http::Body::Binary(bytes) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

pub use express::{express_world, latest_poll, poll_job, poll_night, ExpressWorld};
pub use in_flight::BothInFlight;
pub use insurup::{insurup_request, InsurUpTenant, INSURUP_EMAIL, INSURUP_PASSWORD};
pub use karel::KAREL_TOKEN;
pub use logo::{job, logo_sandbox, logo_world, run_to_end, sync, LogoWorld};
pub use pbx::{CallsInFlight, PBX_AGENT_USER};

mod capture;
mod express;
mod in_flight;
mod insurup;
mod karel;
mod logo;
mod pbx;
