//! SQS behind [`EventQueue`]: `SendMessageBatch` in chunks of at most 10 entries and 1 MiB
//! (both the service and the emulator refuse larger batches), failed entries retried alone.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use onecrm_domain::envelope::Envelope;
use onecrm_domain::error::PortError;
use onecrm_domain::ports::EventQueue;

use crate::dynamodb::port_error;

pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Attempts for entries SQS reports as failed inside an otherwise successful batch call.
const ENTRY_ATTEMPTS: u32 = 3;

pub struct SqsEventQueue {
    client: ClientSource,
    queue_url: String,
}

/// A client given, or built from the SDK configuration on first use (a function that sends
/// only now and then, such as crm-api's WhatsApp sends, does not build it at init).
enum ClientSource {
    Ready(Client),
    Lazy(Box<aws_config::SdkConfig>, std::sync::OnceLock<Client>),
}

impl ClientSource {
    fn get(&self) -> &Client {
        match self {
            ClientSource::Ready(client) => client,
            ClientSource::Lazy(sdk, client) => client.get_or_init(|| Client::new(sdk)),
        }
    }
}

/// One message ready to send: body plus the attributes a consumer can filter on.
struct Outgoing {
    body: String,
    trace_id: String,
    tenant_id: String,
    kind: String,
}

impl Outgoing {
    /// What SQS counts against the size limits: body plus attribute names, types and values.
    fn size(&self) -> usize {
        self.body.len()
            + self.trace_id.len()
            + self.tenant_id.len()
            + self.kind.len()
            + 3 * ("trace_id".len() + "String".len())
    }
}

/// Splits messages into batches within both SQS limits, keeping their order.
fn chunks(sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start == MAX_BATCH_ENTRIES || bytes + size > MAX_BATCH_BYTES) {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        ranges.push(start..sizes.len());
    }
    ranges
}

impl SqsEventQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client: ClientSource::Ready(client),
            queue_url: queue_url.into(),
        }
    }

    /// The queue with its client built on the first send.
    pub fn lazy(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self {
            client: ClientSource::Lazy(Box::new(sdk.clone()), std::sync::OnceLock::new()),
            queue_url: queue_url.into(),
        }
    }

    async fn send_batch(&self, batch: &[Outgoing]) -> Result<(), PortError> {
        let attribute = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| PortError::Rejected(e.to_string()))
        };
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        for attempt in 0..ENTRY_ATTEMPTS {
            if attempt > 0 {
                let wait = crate::backoff::delay(
                    attempt,
                    Duration::from_millis(100),
                    Duration::from_secs(1),
                    None,
                );
                tokio::time::sleep(wait).await;
            }
            let mut entries = Vec::with_capacity(pending.len());
            for &i in &pending {
                let message = &batch[i];
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&message.body)
                        .message_attributes("trace_id", attribute(&message.trace_id)?)
                        .message_attributes("tenant_id", attribute(&message.tenant_id)?)
                        .message_attributes("kind", attribute(&message.kind)?)
                        .build()
                        .map_err(|e| PortError::Rejected(e.to_string()))?,
                );
            }
            let out = self
                .client
                .get()
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| port_error("SendMessageBatch", e))?;
            let failed = out.failed;
            if let Some(sender_fault) = failed.iter().find(|f| f.sender_fault) {
                return Err(PortError::Rejected(format!(
                    "SQS refused a message: {} {}",
                    sender_fault.code,
                    sender_fault.message.clone().unwrap_or_default()
                )));
            }
            pending = failed.iter().filter_map(|f| f.id.parse().ok()).collect();
            if pending.is_empty() {
                return Ok(());
            }
        }
        Err(PortError::Unavailable(format!(
            "SQS did not accept {} message(s) after {ENTRY_ATTEMPTS} attempts",
            pending.len()
        )))
    }
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), PortError> {
        let outgoing: Vec<Outgoing> = envelopes
            .iter()
            .map(|e| Outgoing {
                body: e.to_json(),
                trace_id: e.trace_id.to_string(),
                tenant_id: e.tenant_id.to_string(),
                kind: e.kind.clone(),
            })
            .collect();
        if let Some(too_big) = outgoing.iter().find(|o| o.size() > MAX_BATCH_BYTES) {
            return Err(PortError::Rejected(format!(
                "an event of {} bytes exceeds the SQS message limit",
                too_big.size()
            )));
        }
        let sizes: Vec<usize> = outgoing.iter().map(Outgoing::size).collect();
        for range in chunks(&sizes) {
            self.send_batch(&outgoing[range]).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_by_count() {
        assert_eq!(chunks(&[1; 25]), vec![0..10, 10..20, 20..25]);
        assert!(chunks(&[]).is_empty());
    }

    #[test]
    fn splits_by_bytes() {
        let half = MAX_BATCH_BYTES / 2;
        assert_eq!(chunks(&[half, half, 1, half]), vec![0..2, 2..4]);
        assert_eq!(chunks(&[MAX_BATCH_BYTES, 1]), vec![0..1, 1..2]);
    }

    /// SQS accepts a batch but fails some entries (the emulator never does this, so the real
    /// client talks to a scripted SQS endpoint over HTTP): only the failed entries are sent again.
    #[tokio::test]
    async fn only_the_entries_sqs_failed_are_sent_again() {
        use wiremock::matchers::{body_string_contains, header};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        let target = "AmazonSQS.SendMessageBatch";
        Mock::given(header("x-amz-target", target))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "Successful": [{"Id": "0", "MessageId": "m0", "MD5OfMessageBody": "x"}, {"Id": "2", "MessageId": "m2", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": false, "Code": "InternalError", "Message": "try again"}]
            })))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(header("x-amz-target", target))
            .and(body_string_contains("\"Id\":\"1\""))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "Successful": [{"Id": "1", "MessageId": "m1", "MD5OfMessageBody": "x"}], "Failed": []
            })))
            .mount(&server)
            .await;
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("eu-central-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .endpoint_url(server.uri())
            .build();
        let queue = SqsEventQueue::new(
            Client::from_conf(config),
            format!("{}/123456789012/q", server.uri()),
        );
        let envelopes: Vec<Envelope> = (0..3)
            .map(|i| Envelope {
                v: onecrm_domain::envelope::ENVELOPE_VERSION,
                tenant_id: onecrm_domain::tenant::TenantId::parse("demo").unwrap(),
                integration: onecrm_domain::log::Integration::WhatsApp,
                kind: "whatsapp.message".into(),
                external_id: format!("wamid.{i}"),
                trace_id: onecrm_domain::envelope::TraceId::new("t"),
                received_at: chrono::Utc::now(),
                ordering_key: None,
                replay_of: None,
                payload: serde_json::Value::Null,
            })
            .collect();
        queue.enqueue(&envelopes).await.unwrap();
        let requests = server.received_requests().await.unwrap();
        assert_eq!(requests.len(), 2);
        let retry: serde_json::Value = serde_json::from_slice(&requests[1].body).unwrap();
        let ids: Vec<&str> = retry["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["1"], "only the failed entry, with its original id");
        assert!(retry["Entries"][0]["MessageBody"]
            .as_str()
            .unwrap()
            .contains("wamid.1"));
    }

    proptest! {
        #[test]
        fn every_chunk_respects_both_limits(sizes in proptest::collection::vec(1usize..=MAX_BATCH_BYTES, 0..60)) {
            let ranges = chunks(&sizes);
            let mut next = 0;
            for r in &ranges {
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty() && r.len() <= MAX_BATCH_ENTRIES);
                prop_assert!(r.len() == 1 || sizes[r.clone()].iter().sum::<usize>() <= MAX_BATCH_BYTES);
                next = r.end;
            }
            prop_assert_eq!(next, sizes.len());
        }
    }
}
