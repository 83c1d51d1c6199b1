//! Events held for a route no tenant owned yet, delivered once the route is registered.

use super::*;

impl Ingress {
    /// Delivers the events held for `route` to the tenant that now owns it: parsed, queued (or
    /// kept as unparsed), then released. An event is delivered only if the tenant's own
    /// credential (its Meta app) is one that authenticated it; others are dropped with an error
    /// record (another app's tenant could otherwise claim them). Safe to run again: returns how
    /// many held parts were delivered.
    pub async fn release_unrouted(&self, route: &TenantRoute) -> Result<usize, PortError> {
        let Some(target) = self.tenants.resolve_fresh(route).await? else {
            return Ok(0);
        };
        let credential = self.auth.secret_name(&target);
        let mut delivered = 0;
        loop {
            let page = self
                .archive
                .unrouted(self.spec.integration(), Some(route), PageRequest::first(25))
                .await?;
            if page.items.is_empty() {
                return Ok(delivered);
            }
            for held in page.items {
                let authentic = match &credential {
                    Some(name) => held.verified_by.contains(name),
                    None => true,
                };
                if !authentic {
                    self.archive.release(&held).await?;
                    self.log
                        .write(
                            self.entry(&target.tenant_id, LogResult::Error, &held.trace_id).error(
                                "unrouted_credential_mismatch",
                                format!(
                                    "{} was held from a delivery this tenant's credential did not sign; dropped",
                                    held.path
                                ),
                            ),
                        )
                        .await;
                    continue;
                }
                let unit = Unit {
                    route: route.clone(),
                    path: held.path.clone(),
                    raw: held.raw.clone(),
                    context: held.context.clone(),
                };
                let (mut envelopes, mut kept) = (Vec::new(), Vec::new());
                let report = self.parse_for(
                    &target.tenant_id,
                    std::slice::from_ref(&unit),
                    &held.trace_id,
                    held.received_at,
                    held.expires_at,
                    &mut envelopes,
                    &mut kept,
                );
                for k in &mut kept {
                    if let Kept::Delivery(d) = k {
                        d.released = Some(held.id.clone());
                    }
                }
                self.queue.enqueue(&envelopes).await?;
                self.archive.keep(&kept).await?;
                self.archive.release(&held).await?;
                self.log_report(report, &held.trace_id, true, 200).await;
                delivered += 1;
            }
        }
    }
}
