//! The synchronous route: the same admission, then a handler answers the event at once.

use super::*;

impl Ingress {
    /// The synchronous route (a PBX popup): the same admission, then `handler` answers each
    /// event at once. The handler does its own conditional write, so a repeat is harmless.
    pub async fn answer(
        &self,
        request: &InboundRequest<'_>,
        trace: &TraceId,
        handler: &dyn SyncHandler,
    ) -> HttpReply {
        let admitted = match self.admit(request, trace).await {
            Ok(admitted) => admitted,
            Err(reply) => return reply,
        };
        let Some(tenant) = admitted.by_tenant.first().map(|(t, _)| t.clone()) else {
            let error = FieldError::new("route", "unknown_tenant", "no tenant owns this route");
            return self
                .refuse(&TenantId::unresolved(), request, trace, 400, &[error])
                .await;
        };
        let (mut envelopes, mut kept, reports) = self.prepare(&admitted, trace);
        // The first event is answered now; any others go the usual, durable way.
        let first = (!envelopes.is_empty()).then(|| envelopes.remove(0));
        // An answered event's durable record is the handler's own conditional write, which
        // holds the event whole (a PBX call event); the raw copy would only double its cost.
        // What did not parse, or waits in the queue, keeps its raw delivery.
        if first.is_some() && envelopes.is_empty() {
            kept.retain(|k| !matches!(k, Kept::Delivery(_)));
        }
        let (queued, archived) =
            futures::join!(self.queue.enqueue(&envelopes), self.archive.keep(&kept));
        if let Err(e) = queued.and(archived) {
            return self.unavailable(&tenant, trace, &e).await;
        }
        // Nothing to answer: the event did not parse. It is kept whole (above); the sender
        // is told which field was wrong, since a synchronous sender waits for this answer.
        let refusal = match &first {
            Some(_) => None,
            None => reports.iter().find_map(|r| r.first_errors.clone()),
        };
        let status = if refusal.is_some() { 400 } else { 200 };
        for report in reports {
            // The answered event's own record comes from the handler; a summary only when more
            // was queued.
            let with_summary = report.queued > 1 || report.tenant != tenant;
            self.log_report(report, trace, with_summary, status).await;
        }
        let Some(envelope) = first else {
            return match refusal {
                Some(errors) => HttpReply::invalid(&errors, trace.as_str()),
                None => HttpReply::json(
                    200,
                    &json!({ "status": "unparsed", "trace_id": trace.as_str() }),
                ),
            };
        };
        match handler.answer(&envelope).await {
            Ok((reply, entry)) => {
                self.log.write(entry.http_status(reply.status)).await;
                reply
            }
            Err(e) if e.is_retryable() => self.unavailable(&tenant, trace, &e).await,
            // Retrying will not help (a tenant without configuration, a vanished card): say so,
            // so the sender does not retry forever; the log record tells an operator why.
            Err(e) => {
                self.log
                    .write(
                        self.entry(&tenant, LogResult::Error, trace)
                            .error(e.code(), e.to_string())
                            .http_status(500),
                    )
                    .await;
                HttpReply::error(
                    500,
                    e.code(),
                    "the event cannot be handled; see the integration log",
                    None,
                    trace.as_str(),
                )
            }
        }
    }
}
