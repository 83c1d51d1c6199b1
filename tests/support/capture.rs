//! The lead-capture functions wired for tests: Lead Ads (webhook, worker, Graph stand-in) and
//! web forms (webhook with a fresh key, worker).

use std::sync::Arc;

use onecrm_adapters::sqs::SqsEventQueue;
use onecrm_domain::tenant::{secret_name, TenantRoute};
use serde_json::json;

use crate::{unique, Stack, TestQueue, TestTenant};

impl Stack {
    /// `meta-lead` with its queue, and the tenant's Lead Ads settings, Page route and Page
    /// token (the app secret is the tenant's Meta app's, as for WhatsApp).
    pub async fn meta_lead(
        &self,
        queue: &TestQueue,
        tenant: &TestTenant,
        page_id: &str,
    ) -> meta_lead::App {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        config.integrations.meta_lead_ads = Some(onecrm_domain::tenant::MetaLeadAdsSettings {
            page_ids: vec![page_id.into()],
            meta_app_id: tenant.app_id.clone(),
            field_mapping: Default::default(),
        });
        crm.put_tenant(&config, &[TenantRoute::MetaPage(page_id.into())])
            .await
            .unwrap();
        self.secrets()
            .put(
                &secret_name(&self.settings.tenant_secret_prefix, &tenant.id, "meta"),
                &json!({ "page_access_token": "EAAB-page-token", "verify_token": tenant.verify_token })
                    .to_string(),
            )
            .await
            .unwrap();
        let wiring = self.wiring();
        let ports = wiring
            .ingress_ports(Arc::new(SqsEventQueue::new(self.sqs(), &queue.url)))
            .unwrap();
        meta_lead::App::new(&wiring, ports, None)
    }

    /// `web-form` for `tenant`: a fresh API key (returned), its allowed origins and limit.
    pub async fn web_form(
        &self,
        queue: &TestQueue,
        tenant: &TestTenant,
        origins: &[&str],
        per_minute: u32,
    ) -> (web_form::App, String) {
        let crm = self.crm();
        let mut config = onecrm_domain::ports::TenantDirectory::tenant(&crm, &tenant.id)
            .await
            .unwrap()
            .unwrap();
        config.integrations.web_form = Some(onecrm_domain::tenant::WebFormSettings {
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            submissions_per_minute: per_minute,
        });
        let key = unique("wf_");
        let mut routes = vec![TenantRoute::web_form_key(&key)];
        routes.extend(origins.iter().map(|o| TenantRoute::web_form_origin(o)));
        crm.put_tenant(&config, &routes).await.unwrap();
        (self.web_form_app(queue), key)
    }

    /// Another `web-form` instance on the same queue (a second Lambda sandbox).
    pub fn web_form_app(&self, queue: &TestQueue) -> web_form::App {
        web_form::App::new(
            &self.wiring(),
            Arc::new(SqsEventQueue::new(self.sqs(), &queue.url)),
        )
        .unwrap()
    }

    pub fn web_form_worker(&self, queue: &TestQueue) -> web_form_worker::App {
        web_form_worker::App::new(&self.wiring(), queue.max_receive_count)
    }
}
