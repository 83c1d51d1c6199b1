//! Lambda glue shared by every function: JSON logs, HTTP answers, SQS batches.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_http::{Body, Request, RequestExt, Response};
use onecrm_domain::batch::QueueMessage;
use onecrm_domain::envelope::TraceId;
use onecrm_domain::http::HttpReply;
use onecrm_domain::ingress::InboundRequest;
use onecrm_domain::meta::HandshakeQuery;
use onecrm_domain::meta_webhook::MetaWebhook;
use tracing::Instrument;

/// JSON lines for CloudWatch; span fields (the trace id) ride on every line. `RUST_LOG` filters
/// by level and target (`info`, `debug,aws_smithy_runtime=warn`); no regex engine needed.
pub fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::level_filters::LevelFilter::INFO)
        });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false);
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(filter)
        .try_init();
}

pub fn http_response(reply: HttpReply) -> Response<Body> {
    let mut response = Response::new(Body::Text(reply.body));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(reply.status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = lambda_http::http::HeaderValue::from_str(reply.content_type) {
        response
            .headers_mut()
            .insert(lambda_http::http::header::CONTENT_TYPE, value);
    }
    for (name, value) in &reply.headers {
        if let Ok(value) = lambda_http::http::HeaderValue::from_str(value) {
            response.headers_mut().insert(*name, value);
        }
    }
    response
}

pub fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The request's headers as the ingress reads them (names are lower-case in `http`).
pub fn headers(request: &Request) -> Vec<(&str, &str)> {
    request
        .headers()
        .iter()
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect()
}

/// The caller's address as API Gateway saw it (for PBX allow-lists).
pub fn source_ip(request: &Request) -> Option<&str> {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.http.source_ip.as_deref()
        }
        _ => None,
    }
}

/// A value carried as the URL's last segment (`/pbx/<token>`, `/insurup/<account>`): API
/// Gateway's `{param}`, or, under `cargo lambda watch` (which passes no path parameters), the
/// last segment that is not one of the function's own path names (`own`).
pub fn path_segment(request: &Request, param: &str, own: &[&str]) -> Option<String> {
    if let Some(value) = request.path_parameters_ref().and_then(|p| p.first(param)) {
        return Some(value.to_string());
    }
    let last = request.uri().path().rsplit('/').find(|s| !s.is_empty())?;
    (!own.contains(&last) && last != "lambda-url").then(|| last.to_string())
}

/// Meta's handshake parameters, from the query string as API Gateway passed it.
pub fn handshake_query(request: &Request) -> HandshakeQuery {
    let params = request.query_string_parameters_ref();
    let get = |name: &str| params.and_then(|p| p.first(name)).map(str::to_string);
    HandshakeQuery {
        mode: get("hub.mode"),
        verify_token: get("hub.verify_token"),
        challenge: get("hub.challenge"),
    }
}

/// The API Gateway request id, for correlating with API Gateway's own logs.
pub fn request_id(request: &Request) -> String {
    match request.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => {
            ctx.request_id.clone().unwrap_or_default()
        }
        _ => String::new(),
    }
}

pub fn queue_messages(event: SqsEvent) -> Vec<QueueMessage> {
    event
        .records
        .into_iter()
        .filter_map(|record| {
            // Lambda never sends a record without an id; one without could not be reported anyway.
            let message_id = record.message_id.filter(|id| !id.is_empty())?;
            let receive_count = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            Some(QueueMessage {
                message_id,
                body: record.body.unwrap_or_default(),
                receive_count,
            })
        })
        .collect()
}

pub fn batch_response(failed_ids: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed_ids
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// A Meta webhook over HTTP (WhatsApp, Lead Ads): GET is the handshake, POST a signed delivery.
/// Routes on the method only, so the same code serves API Gateway (`/whatsapp`, `/meta-lead`)
/// and `cargo lambda watch` (`/lambda-url/<function>/...`).
pub async fn serve_meta_webhook(
    webhook: &MetaWebhook,
    trace: TraceId,
    request: Request,
) -> Response<Body> {
    let span =
        tracing::info_span!("meta_webhook", trace_id = %trace, request_id = %request_id(&request));
    let reply = async {
        match request.method().as_str() {
            "GET" => webhook.handshake(&handshake_query(&request), &trace).await,
            "POST" => {
                let headers = headers(&request);
                let inbound = InboundRequest {
                    // lambda_http has already decoded an `isBase64Encoded` body: these are the
                    // bytes Meta signed.
                    body: request.body().as_ref(),
                    headers: &headers,
                    source_ip: source_ip(&request),
                    path_token: None,
                };
                webhook.deliver(&inbound, &trace).await
            }
            other => HttpReply::method_not_allowed(other, "GET or POST", trace.as_str()),
        }
    }
    .instrument(span)
    .await;
    http_response(reply)
}

/// An SQS event through the shared batch processor (ordering keys, one log record per failure,
/// `dead_lettered` on the last delivery), answered with only the failed message ids.
pub async fn serve_sqs_batch<F, Fut>(
    event: SqsEvent,
    integration: onecrm_domain::log::Integration,
    max_receive_count: u32,
    log: &onecrm_domain::log::IntegrationLog,
    handler: F,
) -> SqsBatchResponse
where
    F: Fn(onecrm_domain::envelope::Envelope, u32) -> Fut,
    Fut: std::future::Future<Output = Result<(), onecrm_domain::batch::ProcessError>>,
{
    let failed = onecrm_domain::batch::process_batch(
        queue_messages(event),
        integration,
        max_receive_count,
        log,
        handler,
    )
    .await;
    batch_response(failed)
}

/// Time a nightly job keeps back from its invocation's deadline: the page in flight and the
/// checkpoint.
const SAFETY_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// When a nightly job's invocation (deadline in epoch milliseconds) should stop taking pages.
pub fn stop_before(deadline_ms: u64) -> std::time::Instant {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    // A short invocation (local runs) keeps half its time back instead.
    let margin = SAFETY_MARGIN.min(left / 2);
    Instant::now() + left.saturating_sub(margin)
}

/// A nightly job's Lambda (`logo-sync`, `express-member-poll`): SQS records are jobs, run
/// until a minute before the invocation's deadline; any other event is the schedule's, whose
/// `fan_out` queues one job per connected tenant.
pub async fn serve_nightly<F, Fut, G, GFut>(
    event: lambda_runtime::LambdaEvent<serde_json::Value>,
    (integration, max_receive_count, log): (
        onecrm_domain::log::Integration,
        u32,
        &onecrm_domain::log::IntegrationLog,
    ),
    job: F,
    fan_out: G,
) -> Result<serde_json::Value, lambda_runtime::Error>
where
    F: Fn(onecrm_domain::envelope::Envelope, std::time::Instant) -> Fut,
    Fut: std::future::Future<Output = Result<(), onecrm_domain::batch::ProcessError>>,
    G: FnOnce(serde_json::Value) -> GFut,
    GFut: std::future::Future<Output = Result<serde_json::Value, lambda_runtime::Error>>,
{
    let stop = stop_before(event.context.deadline);
    if event.payload.get("Records").is_none() {
        return fan_out(event.payload).await;
    }
    let sqs: SqsEvent = serde_json::from_value(event.payload)?;
    let response = serve_sqs_batch(sqs, integration, max_receive_count, log, |envelope, _| {
        job(envelope, stop)
    })
    .await;
    Ok(serde_json::to_value(response)?)
}
