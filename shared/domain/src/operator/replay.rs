//! Failed events back on their way: what sits in an integration's dead-letter queue is listed
//! from the queue itself, and an operator re-queues one event (by trace id) or all of an
//! integration's within a time range, once the cause is fixed. A replayed envelope carries
//! `replay_of` and keeps its trace id; the workers' idempotent writes make a replay of an event
//! that had in fact succeeded change nothing.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::envelope::Envelope;
use crate::error::PortError;
use crate::log::Integration;

/// A message taken from a dead-letter queue (invisible to others until given back or gone).
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub message_id: String,
    /// The queue's handle for giving it back or deleting it.
    pub receipt: String,
    /// `None`: the body is not an envelope (listed, never replayed).
    pub envelope: Option<Envelope>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// What a listing shows of a dead letter (no payload: that is the `payloads` scope's).
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterView {
    pub message_id: String,
    pub trace_id: String,
    pub kind: String,
    pub received_at: DateTime<Utc>,
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

impl DeadLetter {
    pub fn view(&self) -> Option<DeadLetterView> {
        let e = self.envelope.as_ref()?;
        Some(DeadLetterView {
            message_id: self.message_id.clone(),
            trace_id: e.trace_id.to_string(),
            kind: e.kind.clone(),
            received_at: e.received_at,
            dead_lettered_at: self.sent_at,
        })
    }
}

/// The integrations' dead-letter queues and the queues they feed.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to `max` messages of the integration's DLQ, each invisible to others for a while.
    async fn take(
        &self,
        integration: Integration,
        max: usize,
    ) -> Result<Vec<DeadLetter>, PortError>;
    /// Visible again at once (listed, or another tenant's).
    async fn give_back(
        &self,
        integration: Integration,
        letters: &[DeadLetter],
    ) -> Result<(), PortError>;
    /// The envelope onto the integration's queue, then the letter off the DLQ: a failure
    /// between the two leaves a duplicate the worker's idempotency absorbs, never a loss.
    async fn redrive(
        &self,
        integration: Integration,
        letter: &DeadLetter,
        envelope: &Envelope,
    ) -> Result<(), PortError>;
}

/// How many dead letters one request looks through.
pub const MAX_LOOKED_AT: usize = 500;
