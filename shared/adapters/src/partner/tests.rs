//! The partner client against real HTTP servers (wiremock): what a partner's failures look like
//! on the wire, and what we do about them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onecrm_domain::testing::{FixedClock, MemoryLogSink, SequentialIds};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

struct Tokens {
    refreshes: AtomicU32,
}

#[async_trait]
impl TokenSource for Tokens {
    async fn token(&self, refresh: bool) -> Result<Secret, PortError> {
        if refresh {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
            return Ok(Secret::new("fresh-token"));
        }
        Ok(Secret::new(if self.refreshes.load(Ordering::SeqCst) > 0 {
            "fresh-token"
        } else {
            "stale-token"
        }))
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(300),
        total_budget: Duration::from_secs(5),
    }
}

fn client(logs: Arc<MemoryLogSink>, breaker: BreakerSettings) -> PartnerClient {
    let log = IntegrationLog::new(
        logs,
        Arc::new(FixedClock::at("2026-11-25T10:00:00Z")),
        Arc::new(SequentialIds::default()),
        90,
    );
    PartnerClient::new(log, policy(), breaker).unwrap()
}

async fn get(
    client: &PartnerClient,
    url: String,
    token: Option<&dyn TokenSource>,
) -> Result<PartnerResponse, PortError> {
    let tenant = TenantId::parse("demo").unwrap();
    let trace = TraceId::new("trace-out");
    client
        .send(PartnerRequest {
            classify: None,
            idempotent: true,
            form: None,
            tenant: &tenant,
            integration: Integration::InsurUp,
            operation: "insurup.customer.get",
            method: reqwest::Method::GET,
            url,
            body: None,
            trace: &trace,
            token,
            external_id: Some("cust-1".into()),
        })
        .await
}

#[tokio::test]
async fn a_429_is_retried_after_the_partners_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/c"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/c"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "cust-1"})))
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSink::default());
    let started = Instant::now();
    let response = get(
        &client(logs.clone(), BreakerSettings::default()),
        format!("{}/c", server.uri()),
        None,
    )
    .await
    .unwrap();
    assert_eq!(response.body["id"], "cust-1");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited as asked: {:?}",
        started.elapsed()
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    let records = logs.records();
    assert_eq!(records.len(), 1, "one record per call, not per attempt");
    assert_eq!(
        (
            records[0].result,
            records[0].attempt,
            records[0].http_status
        ),
        (LogResult::Success, Some(2), Some(200))
    );
}

#[tokio::test]
async fn a_500_then_success_is_one_successful_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSink::default());
    assert!(get(
        &client(logs.clone(), BreakerSettings::default()),
        server.uri(),
        None
    )
    .await
    .is_ok());
    assert_eq!(logs.records()[0].attempt, Some(2));
}

#[tokio::test]
async fn a_partner_that_never_answers_in_time_is_unavailable_after_the_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSink::default());
    let error = get(
        &client(logs.clone(), BreakerSettings::default()),
        server.uri(),
        None,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, PortError::Unavailable(m) if m.contains("timed out")),
        "{error}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
    let record = &logs.records()[0];
    assert_eq!(
        (record.result, record.error_code.as_deref()),
        (LogResult::Error, Some("dependency_unavailable"))
    );
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer stale-token"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer fresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let tokens = Tokens {
        refreshes: AtomicU32::new(0),
    };
    let logs = Arc::new(MemoryLogSink::default());
    let response = get(
        &client(logs.clone(), BreakerSettings::default()),
        server.uri(),
        Some(&tokens),
    )
    .await
    .unwrap();
    assert_eq!(response.body["ok"], true);
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    // Still refused after the refresh: unauthorized, not an endless loop.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let tokens = Tokens {
        refreshes: AtomicU32::new(0),
    };
    let error = get(
        &client(logs.clone(), BreakerSettings::default()),
        server.uri(),
        Some(&tokens),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PortError::Unauthorized(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_retry_after_the_refresh_keeps_the_renewed_token() {
    let server = MockServer::start().await;
    Mock::given(header("authorization", "Bearer stale-token"))
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    // The renewed token's first attempt is throttled, its second answered.
    Mock::given(header("authorization", "Bearer fresh-token"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(header("authorization", "Bearer fresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    let tokens = Tokens {
        refreshes: AtomicU32::new(0),
    };
    let logs = Arc::new(MemoryLogSink::default());
    let client = client(logs, BreakerSettings::default());
    let response = get(&client, server.uri(), Some(&tokens)).await.unwrap();
    assert_eq!(response.body["ok"], true);
    assert_eq!(
        tokens.refreshes.load(Ordering::SeqCst),
        1,
        "one renewal, not one per retry"
    );
}

#[tokio::test]
async fn a_failing_partner_opens_the_circuit_and_calls_fail_fast() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSink::default());
    let client = client(
        logs.clone(),
        BreakerSettings {
            failures_to_open: 2,
            open_for: Duration::from_secs(60),
        },
    );
    for _ in 0..2 {
        assert!(get(&client, server.uri(), None).await.is_err());
    }
    let hits = server.received_requests().await.unwrap().len();
    let error = get(&client, server.uri(), None).await.unwrap_err();
    assert!(error.to_string().contains("paused"), "{error}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        hits,
        "no call reached the partner"
    );
    assert_eq!(logs.records().len(), 3, "the refused call is logged too");
}

#[tokio::test]
async fn a_client_error_is_not_retried_and_the_log_is_masked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(json!({"error": "tckn invalid", "tckn": "10000000146"})),
        )
        .mount(&server)
        .await;
    let logs = Arc::new(MemoryLogSink::default());
    let client = client(logs.clone(), BreakerSettings::default());
    let tenant = TenantId::parse("demo").unwrap();
    let trace = TraceId::new("t");
    let error = client
        .send(PartnerRequest {
            classify: None,
            idempotent: true,
            form: None,
            tenant: &tenant,
            integration: Integration::Karel,
            operation: "karel.opportunity.create",
            method: reqwest::Method::POST,
            url: format!(
                "{}/opportunities?access_token=EAAG-secret&page=2",
                server.uri()
            ),
            body: Some(
                json!({"phone": "+905331234567", "email": "ayse@ornek.com", "api_key": "k-123"}),
            ),
            trace: &trace,
            token: None,
            external_id: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, PortError::Rejected(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let text = serde_json::to_string(&logs.records()).unwrap();
    for leaked in [
        "EAAG-secret",
        "905331234567",
        "ayse@ornek.com",
        "k-123",
        "10000000146",
    ] {
        assert!(!text.contains(leaked), "{leaked} in {text}");
    }
    assert!(text.contains("page=2") && text.contains("422"), "{text}");
}

#[test]
fn endpoints_come_from_configuration() {
    assert_eq!(
        endpoint("nobody_sets_this", "https://graph.facebook.com/"),
        "https://graph.facebook.com"
    );
}
