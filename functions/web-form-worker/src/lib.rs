//! `web-form-worker`: the SQS consumer that lands queued website form submissions on cards
//! (the same landing as Lead Ads); reports only the failed messages back.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent};
use onecrm_adapters::lambda::serve_sqs_batch;
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::log::{Integration, IntegrationLog};
use onecrm_domain::web_form::worker::WebFormWorker;

pub struct App {
    worker: WebFormWorker,
    log: IntegrationLog,
    max_receive_count: u32,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        Ok(Self::new(&wiring, wiring.max_receive_count()?))
    }

    pub fn new(wiring: &Wiring, max_receive_count: u32) -> Self {
        Self {
            worker: {
                let worker =
                    WebFormWorker::new(wiring.crm.clone(), wiring.crm.clone(), wiring.log.clone());
                // Leads asking for a service go to Karel too when the deployment has its queue.
                match wiring.optional_queue("KAREL_QUEUE_URL") {
                    Some(queue) => worker.with_karel(queue),
                    None => worker,
                }
            },
            log: wiring.log.clone(),
            max_receive_count,
        }
    }
}

pub async fn handle(app: &App, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    Ok(serve_sqs_batch(
        event.payload,
        Integration::WebForm,
        app.max_receive_count,
        &app.log,
        |envelope, attempt| app.worker.handle(envelope, attempt),
    )
    .await)
}
