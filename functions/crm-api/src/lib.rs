//! `crm-api`: the operator API (`GET /v1/...`, `POST /v1/replay`, `POST /v1/whatsapp/messages`),
//! each call scoped to the tenant of its API key (`Authorization: Bearer <key>` or
//! `x-api-key`), and the log screen that uses it (`GET /ui`). Routes: `shared/domain/src/operator/api.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use lambda_http::{Body, Error, Request, RequestExt, Response};
use onecrm_adapters::dead_letters::SqsDeadLetters;
use onecrm_adapters::dynamodb::{ArchiveStore, OperatorStore};
use onecrm_adapters::lambda::{header, http_response, request_id};
use onecrm_adapters::wiring::Wiring;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::operator::api::{ApiRequest, OperatorApi};
use onecrm_domain::operator::replay::DeadLetters;
use onecrm_domain::operator::whatsapp::SendPorts;
use onecrm_domain::ports::IdGenerator;
use tracing::Instrument;

pub struct App {
    api: OperatorApi,
    ids: Arc<dyn IdGenerator>,
}

impl App {
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, Error> {
        let wiring = Wiring::from_env(sdk)?;
        let raw_events = onecrm_adapters::config::required("RAW_EVENT_TABLE")?;
        let dead_letters = SqsDeadLetters::from_env(sdk);
        Ok(Self::new(&wiring, &raw_events, Arc::new(dead_letters)))
    }

    /// `raw_events`: the raw event archive's table (payloads); `dead_letters`: the
    /// integrations' queues (replay).
    pub fn new(wiring: &Wiring, raw_events: &str, dead_letters: Arc<dyn DeadLetters>) -> Self {
        let archive = Arc::new(ArchiveStore::new(wiring.dynamo.clone(), raw_events));
        let reads = OperatorStore {
            crm: wiring.crm.clone(),
            archive: archive.clone(),
        };
        Self {
            api: OperatorApi {
                keys: wiring.crm.clone(),
                archive,
                logs: wiring.log_reader(),
                crm: wiring.crm.clone(),
                calls: wiring.crm.clone(),
                reads: Arc::new(reads),
                dead_letters,
                send: SendPorts {
                    tenants: wiring.crm.clone(),
                    sends: wiring.crm.clone(),
                    queue: wiring.optional_queue("WHATSAPP_SEND_QUEUE_URL"),
                },
                log: wiring.log.clone(),
            },
            ids: wiring.ids.clone(),
        }
    }
}

impl App {
    /// Sends go to this queue (tests; deployed, `WHATSAPP_SEND_QUEUE_URL`).
    pub fn sending_to(mut self, queue: Arc<dyn onecrm_domain::ports::EventQueue>) -> Self {
        self.api.send.queue = Some(queue);
        self
    }

    /// The operator API itself (`make bench-logs` times its log route in process).
    pub fn api(&self) -> &OperatorApi {
        &self.api
    }
}

/// The log screen: one static page (no build step) that calls the routes beside it with the
/// key its user enters (kept for the browser session only).
const SCREEN: &str = include_str!("screen.html");

fn screen() -> HttpReply {
    HttpReply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: SCREEN.to_string(),
        headers: vec![
            ("cache-control", "no-cache".into()),
            (
                "content-security-policy",
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'".into(),
            ),
        ],
    }
}

/// The API's own path: from `/v1/` on (API Gateway gives it as is; `cargo lambda watch` puts
/// `/lambda-url/crm-api` before it).
fn api_path(path: &str) -> &str {
    path.find("/v1/").map_or(path, |at| &path[at..])
}

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let trace = TraceId::new(app.ids.new_id());
    let span =
        tracing::info_span!("crm_api", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        let query: HashMap<String, String> = request
            .query_string_parameters_ref()
            .map(|q| {
                q.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let api_key = header(&request, "authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .or_else(|| header(&request, "x-api-key"));
        let path = request.uri().path().to_string();
        if request.method() == "GET" && path.trim_end_matches('/').ends_with("/ui") {
            return screen();
        }
        app.api
            .handle(ApiRequest {
                method: request.method().as_str(),
                path: api_path(&path),
                query: &query,
                api_key,
                trace: &trace,
                body: std::str::from_utf8(request.body().as_ref()).unwrap_or_default(),
            })
            .await
    }
    .instrument(span)
    .await;
    Ok(http_response(reply))
}
