//! Karel push wired for tests: a tenant's Karel settings and token, the worker against a
//! wiremock Karel (with a short attempt timeout, so a slow answer is a timeout in a test).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use lambda_runtime::{Context, LambdaEvent};
use onecrm_adapters::partner::karel::KarelClient;
use onecrm_adapters::partner::{BreakerSettings, PartnerClient, RetryPolicy};
use onecrm_domain::tenant::{secret_name, KarelCustomField, KarelFieldKind, KarelSettings};
use serde_json::json;

use crate::{Stack, TestQueue, TestTenant};

pub const KAREL_TOKEN: &str = "karel-test-token";

impl Stack {
    /// Karel settings like the demo's: default representative 8224, stages teklif → 5 and
    /// kazanildi → 6, the dropdown `proje_tipi` (field 22, "Proje Tipi", yazilim → 5), and
    /// `customers` (CRM card → Karel card).
    pub async fn karel(&self, tenant: &TestTenant, customers: &[(&str, i64)]) {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        let mut settings = KarelSettings {
            default_representative: Some(8224),
            currency_id: 1,
            ..KarelSettings::default()
        };
        settings.stages.insert("teklif".into(), 5);
        settings.stages.insert("kazanildi".into(), 6);
        settings.custom_fields.insert(
            "proje_tipi".into(),
            KarelCustomField {
                id: 22,
                label: "Proje Tipi".into(),
                kind: KarelFieldKind::Option,
                options: [("yazilim".to_string(), 5)].into(),
            },
        );
        for (card, id) in customers {
            settings.customers.insert(card.to_string(), *id);
        }
        config.integrations.karel = Some(settings);
        crm.put_tenant(&config, &[]).await.unwrap();
        self.secrets()
            .put(
                &secret_name(&self.settings.tenant_secret_prefix, &tenant.id, "karel"),
                &json!({ "api_token": KAREL_TOKEN }).to_string(),
            )
            .await
            .unwrap();
    }

    /// `karel-push` calling Karel at `url`; one attempt waits at most `attempt_timeout`.
    pub fn karel_push(
        &self,
        queue: &TestQueue,
        url: &str,
        attempt_timeout: Duration,
    ) -> karel_push::App {
        let wiring = self.wiring();
        let policy = RetryPolicy {
            attempt_timeout,
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        };
        let partner = Arc::new(
            PartnerClient::new(wiring.log.clone(), policy, BreakerSettings::default()).unwrap(),
        );
        let client = KarelClient::new(
            partner,
            wiring.secrets(),
            self.settings.tenant_secret_prefix.clone(),
        )
        .at(url);
        karel_push::App::new(&wiring, Arc::new(client), queue.max_receive_count).unwrap()
    }
}

impl TestQueue {
    pub async fn drain_karel(&self, worker: &karel_push::App) -> usize {
        self.drain_with(|event| async move {
            let response: SqsBatchResponse =
                karel_push::handle(worker, LambdaEvent::new(event, Context::default()))
                    .await
                    .unwrap();
            response
        })
        .await
    }
}
