//! What an integration hands the ingress (its spec, the units and events it parses) and what
//! the ingress keeps (raw deliveries, held events).

use chrono::{DateTime, Utc};

use crate::envelope::{Envelope, TraceId};
use crate::error::{FieldError, PortError};
use crate::http::HttpReply;
use crate::log::{Integration, LogEntry};
use crate::tenant::{TenantId, TenantRoute};

/// An HTTP request as the pipeline sees it: raw body bytes (after API Gateway's base64
/// decoding), lower-case header names, the caller's address.
#[derive(Debug, Clone, Copy)]
pub struct InboundRequest<'a> {
    pub body: &'a [u8],
    pub headers: &'a [(&'a str, &'a str)],
    pub source_ip: Option<&'a str>,
    /// A credential carried as the URL's last segment (`/pbx/<token>`), for senders that
    /// cannot set headers.
    pub path_token: Option<&'a str>,
}

impl<'a> InboundRequest<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// The part of a delivery that belongs to one route (WhatsApp: one `entry[].changes[]` item).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub route: TenantRoute,
    /// Where the unit sits in the delivery (`entry[0].changes[1]`).
    pub path: String,
    /// The unit's JSON exactly as received.
    pub raw: String,
    /// What the parser needs from around the unit (WhatsApp: the entry's WABA id).
    pub context: Option<String>,
}

/// One event ready to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct IngressEvent {
    /// `whatsapp.message`, `meta.leadgen`...
    pub kind: String,
    /// The partner's id of the event: the idempotency key.
    pub external_id: String,
    pub ordering_key: Option<String>,
    pub payload: serde_json::Value,
}

/// What a parser makes of one unit: usually events, sometimes notices or things it ignores, and
/// whatever it cannot understand, kept whole.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(IngressEvent),
    Unparsed {
        path: String,
        raw: String,
        errors: Vec<FieldError>,
    },
    /// The partner reported a problem in the delivery itself (WhatsApp `value.errors`).
    Notice {
        code: String,
        title: String,
        details: Option<String>,
    },
    /// Understood and deliberately not acted on (a webhook field we do not handle).
    Ignored(String),
}

/// What differs per integration besides authentication.
pub trait WebhookSpec: Send + Sync {
    fn integration(&self) -> Integration;
    fn max_body_bytes(&self) -> usize;
    /// The request field that carries a credential the route itself is found by (a PBX
    /// token): a problem with it, or a route nobody owns, is a 401, not a 400.
    fn credential_field(&self) -> Option<&'static str> {
        None
    }
    /// A cheap, loose read: the units and the route of each. An error means the body is not
    /// JSON or not the object this webhook receives at all (400).
    fn split(&self, request: &InboundRequest<'_>) -> Result<Vec<Unit>, FieldError>;
    /// The strict parse of one unit, event by event.
    fn parse(&self, unit: &Unit) -> Vec<Parsed>;
}

/// A delivery's part kept as received, unmasked, for replay (the raw-event archive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedDelivery {
    pub tenant_id: TenantId,
    pub integration: Integration,
    pub trace_id: TraceId,
    pub received_at: DateTime<Utc>,
    /// `(path, raw JSON)` of each of this tenant's units.
    pub units: Vec<(String, String)>,
    /// `None` for the delivery as received; a held event's id when it is delivered later, so it
    /// is archived beside the original, never over it.
    pub released: Option<String>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Authenticated but not understood: kept for a parser fix and a replay.
    Unparsed(TenantId),
    /// For a route no tenant owns yet: delivered when the route is registered.
    Unrouted(TenantRoute),
    /// Queued and understood, but its processing waits for an operator (a partner token to
    /// renew): `raw` is the whole envelope, replayed as is.
    Parked(TenantId),
}

/// An event kept whole instead of being processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldEvent {
    pub hold: Hold,
    /// The credentials that authenticated the delivery (unrouted events: the registering
    /// tenant's own must be one of them).
    pub verified_by: Vec<String>,
    pub integration: Integration,
    /// Content hash: a redelivered event overwrites its own hold instead of doubling it.
    pub id: String,
    pub trace_id: TraceId,
    pub received_at: DateTime<Utc>,
    pub path: String,
    pub raw: String,
    pub context: Option<String>,
    pub reason: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    Delivery(ArchivedDelivery),
    Held(HeldEvent),
}

/// Answers one event of a synchronous route, with the log entry describing what it did.
#[async_trait::async_trait]
pub trait SyncHandler: Send + Sync {
    async fn answer(&self, event: &Envelope) -> Result<(HttpReply, LogEntry), PortError>;
}

/// The queue of a synchronous route whose requests carry one event each (a PBX call): there is
/// never anything left to queue, and a request that had more would be refused loudly.
pub struct NoQueue;

#[async_trait::async_trait]
impl crate::ports::EventQueue for NoQueue {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), PortError> {
        if envelopes.is_empty() {
            Ok(())
        } else {
            Err(PortError::Rejected(format!(
                "this route answers one event per request; {} more cannot be queued",
                envelopes.len()
            )))
        }
    }
}
