//! Function wiring written once: every function builds its adapters here from the environment
//! `template.yaml` sets, so a `main.rs` only picks the use case. Builds clients only; no network
//! call happens before the first request (secrets are read lazily).

use std::sync::Arc;

use onecrm_domain::ingress::IngressPorts;
use onecrm_domain::log::IntegrationLog;
use onecrm_domain::ports::{EventArchive, EventQueue, IdGenerator, SecretStore};

use crate::partner::{BreakerSettings, PartnerClient, RetryPolicy};

use crate::config::{self, ConfigError, Settings};
use crate::dynamodb::{ArchiveStore, CrmStore, LogStore};
use crate::secrets::SecretsManagerStore;
use crate::sqs::SqsEventQueue;
use crate::system::{SystemClock, UuidV7Ids};

pub struct Wiring {
    pub sdk: aws_config::SdkConfig,
    pub settings: Settings,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub crm: Arc<CrmStore>,
    pub log: IntegrationLog,
    pub ids: Arc<dyn IdGenerator>,
}

impl Wiring {
    pub fn new(sdk: &aws_config::SdkConfig, settings: Settings) -> Self {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Ids);
        let log = IntegrationLog::new(
            Arc::new(LogStore::new(dynamo.clone(), &settings.log_table)),
            Arc::new(SystemClock),
            ids.clone(),
            settings.log_retention_days,
        );
        Self {
            sdk: sdk.clone(),
            crm: Arc::new(CrmStore::new(dynamo.clone(), &settings.crm_table)),
            dynamo,
            log,
            ids,
            settings,
        }
    }

    /// The integration log's reader (the operator API's log screen).
    pub fn log_reader(&self) -> Arc<LogStore> {
        Arc::new(LogStore::new(self.dynamo.clone(), &self.settings.log_table))
    }

    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self::new(sdk, Settings::from_env()?))
    }

    /// A Meta webhook's settings (WhatsApp, Lead Ads) from the shared environment;
    /// `default_app_id` is the deployment's own Meta app (`META_APP_ID`), which signs deliveries
    /// for routes not registered yet.
    pub fn meta_webhook_settings(
        &self,
        max_body_bytes: usize,
        default_app_id: Option<String>,
    ) -> onecrm_domain::meta_webhook::WebhookSettings {
        onecrm_domain::meta_webhook::WebhookSettings {
            tenant_secret_prefix: self.settings.tenant_secret_prefix.clone(),
            app_secret_prefix: self.settings.app_secret_prefix.clone(),
            max_body_bytes,
            default_app_id,
            retention_days: self.settings.log_retention_days,
        }
    }

    /// The queue's `maxReceiveCount` (`MAX_RECEIVE_COUNT`, 5): after it a failure means the DLQ.
    pub fn max_receive_count(&self) -> Result<u32, ConfigError> {
        Ok(u32::try_from(config::number("MAX_RECEIVE_COUNT", 5)?).unwrap_or(5))
    }

    /// The SQS queue named by `variable` (`WHATSAPP_QUEUE_URL`...).
    pub fn queue(&self, variable: &str) -> Result<Arc<dyn EventQueue>, ConfigError> {
        Ok(Arc::new(SqsEventQueue::new(
            aws_sdk_sqs::Client::new(&self.sdk),
            config::required(variable)?,
        )))
    }

    /// The queue named by `variable` when the deployment sets it (Karel's, for the workers that
    /// feed it; WhatsApp sends, for crm-api): `None` leaves that integration out. Its client is
    /// built on the first send: these functions send only now and then.
    pub fn optional_queue(&self, variable: &str) -> Option<Arc<dyn EventQueue>> {
        config::optional(variable)
            .map(|url| Arc::new(SqsEventQueue::lazy(&self.sdk, url)) as Arc<dyn EventQueue>)
    }

    /// What a webhook's ingress needs; `queue` is where its events go.
    pub fn ingress_ports(&self, queue: Arc<dyn EventQueue>) -> Result<IngressPorts, ConfigError> {
        Ok(IngressPorts {
            tenants: self.crm.clone(),
            secrets: self.secrets(),
            queue,
            archive: self.archive()?,
            log: self.log.clone(),
        })
    }

    /// Secrets Manager, read lazily and cached.
    pub fn secrets(&self) -> Arc<dyn SecretStore> {
        Arc::new(SecretsManagerStore::new(
            aws_sdk_secretsmanager::Client::new(&self.sdk),
        ))
    }

    /// The raw-event archive (`RAW_EVENT_TABLE`): deliveries, unparsed, unrouted, parked.
    pub fn archive(&self) -> Result<Arc<dyn EventArchive>, ConfigError> {
        Ok(Arc::new(ArchiveStore::new(
            self.dynamo.clone(),
            config::required("RAW_EVENT_TABLE")?,
        )))
    }

    /// The CRM table for a batch job, with [`crate::aws::batch_config`]'s longer timeouts.
    pub fn batch_crm(&self) -> Arc<CrmStore> {
        let sdk = crate::aws::batch_config(&self.sdk);
        Arc::new(CrmStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &self.settings.crm_table,
        ))
    }

    /// A nightly integration's run items (checkpoint and lease), on the batch job's table
    /// client.
    pub fn runs(
        &self,
        integration: onecrm_domain::log::Integration,
        lease_seconds: i64,
    ) -> onecrm_domain::nightly::Runs {
        onecrm_domain::nightly::Runs {
            store: self.batch_crm(),
            integration,
            lease: onecrm_domain::nightly::lease(lease_seconds),
        }
    }

    /// The partner HTTP client with its default retry policy and circuit breaker.
    pub fn partner(&self) -> Result<Arc<PartnerClient>, ConfigError> {
        PartnerClient::new(
            self.log.clone(),
            RetryPolicy::default(),
            BreakerSettings::default(),
        )
        .map(Arc::new)
        .map_err(|e| ConfigError {
            name: "PARTNER_URL_*".into(),
            problem: format!("cannot build the partner HTTP client: {e}"),
        })
    }
}
