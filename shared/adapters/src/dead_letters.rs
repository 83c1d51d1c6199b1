//! The integrations' dead-letter queues for the operator API's replay (`operator::replay`):
//! each integration's queue and DLQ from `REPLAY_<INTEGRATION>_QUEUE_URL` and
//! `REPLAY_<INTEGRATION>_DLQ_URL`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use aws_sdk_sqs::Client;
use chrono::DateTime;
use onecrm_domain::envelope::Envelope;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::operator::replay::{DeadLetter, DeadLetters};
use onecrm_domain::ports::EventQueue;

use crate::dynamodb::port_error;
use crate::sqs::SqsEventQueue;

/// How long a taken letter stays invisible if it is not given back (a crashed request).
const TAKEN_FOR_SECONDS: i32 = 30;

pub struct SqsDeadLetters {
    /// Built on first use, not at init: most operator calls never touch a queue, and a cold
    /// start should not pay for an SQS client it may not need.
    client: std::sync::OnceLock<Client>,
    sdk: aws_config::SdkConfig,
    /// Integration → (its queue, its DLQ).
    queues: HashMap<Integration, (String, String)>,
}

impl SqsDeadLetters {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        queues: HashMap<Integration, (String, String)>,
    ) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            sdk: sdk.clone(),
            queues,
        }
    }

    /// The queues named in the environment.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let queues = Integration::ALL
            .into_iter()
            .filter_map(|i| {
                let name = i.as_str().to_ascii_uppercase();
                let queue = crate::config::optional(&format!("REPLAY_{name}_QUEUE_URL"))?;
                let dlq = crate::config::optional(&format!("REPLAY_{name}_DLQ_URL"))?;
                Some((i, (queue, dlq)))
            })
            .collect();
        Self::new(sdk, queues)
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| Client::new(&self.sdk))
    }

    fn queues(&self, integration: Integration) -> Result<&(String, String), PortError> {
        self.queues.get(&integration).ok_or_else(|| {
            PortError::Rejected(format!(
                "{} has no dead-letter queue here",
                integration.as_str()
            ))
        })
    }
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn take(
        &self,
        integration: Integration,
        max: usize,
    ) -> Result<Vec<DeadLetter>, PortError> {
        let (_, dlq) = self.queues(integration)?;
        let mut letters = Vec::new();
        while letters.len() < max {
            let out = self
                .client()
                .receive_message()
                .queue_url(dlq)
                .max_number_of_messages(10)
                .visibility_timeout(TAKEN_FOR_SECONDS)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| port_error("ReceiveMessage", e))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                let (Some(message_id), Some(receipt)) = (m.message_id, m.receipt_handle) else {
                    continue;
                };
                let sent_at = m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|t| t.parse::<i64>().ok())
                    .and_then(DateTime::from_timestamp_millis);
                letters.push(DeadLetter {
                    message_id,
                    receipt,
                    envelope: m.body.as_deref().and_then(|b| Envelope::from_json(b).ok()),
                    sent_at,
                });
            }
        }
        Ok(letters)
    }

    async fn give_back(
        &self,
        integration: Integration,
        letters: &[DeadLetter],
    ) -> Result<(), PortError> {
        let (_, dlq) = self.queues(integration)?;
        for letter in letters {
            self.client()
                .change_message_visibility()
                .queue_url(dlq)
                .receipt_handle(&letter.receipt)
                .visibility_timeout(0)
                .send()
                .await
                .map_err(|e| port_error("ChangeMessageVisibility", e))?;
        }
        Ok(())
    }

    async fn redrive(
        &self,
        integration: Integration,
        letter: &DeadLetter,
        envelope: &Envelope,
    ) -> Result<(), PortError> {
        let (queue, dlq) = self.queues(integration)?;
        SqsEventQueue::new(self.client().clone(), queue.clone())
            .enqueue(std::slice::from_ref(envelope))
            .await?;
        self.client()
            .delete_message()
            .queue_url(dlq)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map_err(|e| port_error("DeleteMessage", e))?;
        Ok(())
    }
}
