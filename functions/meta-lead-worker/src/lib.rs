//! `meta-lead-worker`: the SQS consumer that fetches each queued lead from Graph, maps it and
//! lands it on a card; reports only the failed messages back (`ReportBatchItemFailures`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::config;
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::partner::graph::{GraphLeads, DEFAULT_GRAPH_VERSION};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::{Integration, IntegrationLog};
use onecrm_domain::meta_lead::worker::{LeadAdsSource, MetaLeadWorker};

pub struct App {
    worker: MetaLeadWorker,
    log: IntegrationLog,
    /// The queue's `maxReceiveCount`: the delivery after which a failure means the DLQ.
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let max_receive_count = wiring.max_receive_count()?;
        let graph = GraphLeads::new(
            wiring.partner()?,
            wiring.secrets(),
            wiring.settings.tenant_secret_prefix.clone(),
            config::optional("GRAPH_VERSION").unwrap_or_else(|| DEFAULT_GRAPH_VERSION.into()),
        );
        Self::new(&wiring, Arc::new(graph), max_receive_count)
    }

    pub fn new(
        wiring: &Wiring,
        source: Arc<dyn LeadAdsSource>,
        max_receive_count: u32,
    ) -> Result<Self, Error> {
        Ok(Self {
            worker: with_karel(
                MetaLeadWorker::new(
                    source,
                    wiring.crm.clone(),
                    wiring.crm.clone(),
                    wiring.archive()?,
                    wiring.log.clone(),
                    wiring.settings.log_retention_days,
                ),
                wiring,
            ),
            log: wiring.log.clone(),
            max_receive_count,
        })
    }
}

/// Leads asking for a service go to Karel too when the deployment has its queue.
fn with_karel(worker: MetaLeadWorker, wiring: &Wiring) -> MetaLeadWorker {
    match wiring.optional_queue("KAREL_QUEUE_URL") {
        Some(queue) => worker.with_karel(queue),
        None => worker,
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(serve_sqs_batch(
        event.payload,
        Integration::MetaLeadAds,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await)
}
