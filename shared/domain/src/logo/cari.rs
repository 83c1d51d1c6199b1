//! The cari phases: Logo's cari onto CRM cards (with the both-sides-changed rule), and CRM
//! customers into Logo, exactly once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::arp::{LogoArp, LogoCustomer, Winner};
use super::customer::{apply, arp_body, code_for, logo_key, new_card};
use super::job::LogoSync;
use super::ports::{ArpFilter, CustomerWrite, LogoTarget};
use super::run::{Conflict, Problem, SyncRun};
use crate::error::{FieldError, PortError};
use crate::log::{Integration, LogDirection, LogEntry, LogResult};
use crate::party::{Card, IdentityKey};

fn tax_key(customer: &LogoCustomer) -> IdentityKey {
    IdentityKey::TaxId(customer.tax_id.as_str().to_string())
}

impl LogoSync {
    /// One page of cari onto cards: new ones created, known ones updated unless the CRM's
    /// change wins. Returns the writes (the caller writes them while reading on).
    pub(super) async fn customers(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        records: &[LogoArp],
    ) -> Result<Vec<CustomerWrite>, PortError> {
        let tenant = target.tenant;
        let mut readable: Vec<(&LogoArp, LogoCustomer)> = Vec::with_capacity(records.len());
        for arp in records {
            run.report.customers.read += 1;
            match arp.read_with(&target.settings.fields) {
                Ok(customer) => readable.push((arp, customer)),
                Err(errors) => {
                    run.report.customers.skipped += 1;
                    self.skip(target, &mut run.report, "logo.arp.read", errors)
                        .await;
                }
            }
        }
        let keys: Vec<IdentityKey> = readable
            .iter()
            .flat_map(|(_, c)| [logo_key(&c.code), tax_key(c)])
            .collect();
        // Keys claimed before this page, and by the cards this page writes.
        let mut claimed = self.store.claimed(tenant, &keys).await?;
        let ids: Vec<String> = claimed
            .values()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut cards: HashMap<String, Card> = self
            .crm
            .cards(tenant, &ids)
            .await?
            .into_iter()
            .map(|c| (c.card_id.clone(), c))
            .collect();
        let mut writes: Vec<CustomerWrite> = Vec::with_capacity(readable.len());
        for (arp, customer) in readable {
            let by_code = claimed.get(&logo_key(&customer.code).key()).cloned();
            // A card linked to another cari with the same tax number (a branch account) is
            // not this cari's card.
            let by_tax = claimed
                .get(&tax_key(&customer).key())
                .cloned()
                .filter(|id| {
                    cards.get(id).is_some_and(|card| {
                        card.external_ids
                            .get(super::customer::LOGO)
                            .is_none_or(|code| code == &customer.code)
                    })
                });
            let existing = by_code.or(by_tax).and_then(|id| cards.get(&id).cloned());
            let (card, created) = match existing {
                None => (new_card(&customer, run.started_at), true),
                Some(mut card) => {
                    let decision = match (run.last_run, customer.modified_at) {
                        (Some(last), Some(logo_at)) => target
                            .settings
                            .conflict_rule
                            .decide(last, logo_at, card.updated_at)
                            .map(|w| (w, last, logo_at)),
                        _ => None,
                    };
                    if let Some((winner, _, logo_at)) = decision {
                        self.conflict(target, run, arp, &customer, &card, winner, logo_at)
                            .await?;
                        if winner == Winner::Crm {
                            continue;
                        }
                    } else if run.last_run.is_some_and(|last| {
                        card.updated_at > last
                            && customer
                                .modified_at
                                .is_some_and(|l| l < super::arp::whole_seconds(last))
                    }) {
                        // Only the CRM changed it (a full run reads untouched cari too).
                        continue;
                    }
                    apply(&mut card, &customer, run.started_at);
                    (card, false)
                }
            };
            // Keys nobody holds yet become this card's; a key another card holds stays its.
            let mut claims = Vec::new();
            for key in [logo_key(&customer.code), tax_key(&customer)] {
                if let std::collections::hash_map::Entry::Vacant(free) = claimed.entry(key.key()) {
                    free.insert(card.card_id.clone());
                    claims.push(key);
                }
            }
            if created {
                run.report.customers.created += 1;
            } else {
                run.report.customers.updated += 1;
            }
            cards.insert(card.card_id.clone(), card.clone());
            writes.push(CustomerWrite { card, claims });
        }
        Ok(writes)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn conflict(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        arp: &LogoArp,
        customer: &LogoCustomer,
        card: &Card,
        winner: Winner,
        logo_at: DateTime<Utc>,
    ) -> Result<(), PortError> {
        run.report.conflict(Conflict::new(
            &customer.code,
            &card.card_id,
            winner,
            logo_at,
            card.updated_at,
        ));
        let side = if winner == Winner::Crm { "crm" } else { "logo" };
        self.log
            .write(
                LogEntry::new(
                    target.tenant.clone(),
                    Integration::Logo,
                    LogDirection::Inbound,
                    "logo.arp.conflict",
                    LogResult::Warning,
                    target.trace.clone(),
                )
                .error(
                    "both_sides_changed",
                    format!(
                        "cari {} and card {} both changed since the last run; the {} rule keeps {side}'s",
                        customer.code,
                        card.card_id,
                        serde_json::to_value(target.settings.conflict_rule)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                )
                .external_id(customer.code.clone())
                .card_id(card.card_id.clone()),
            )
            .await;
        if winner == Winner::Crm {
            let body = arp_body(card, &customer.code, &target.settings.fields);
            if let (Some(reference), Some(body)) = (arp.internal_reference, body) {
                match self.api.update_arp(target, reference, &body).await {
                    Ok(()) => {}
                    // Logo refused the CRM's values: reported, the run goes on.
                    Err(PortError::Rejected(why)) => run.report.problem(Problem {
                        field: format!("Arps[{}]", customer.code),
                        code: "logo_refused_update".into(),
                        message: why,
                    }),
                    Err(other) => return Err(other),
                }
            }
        }
        Ok(())
    }

    /// A CRM customer into Logo under the code derived from its card: Logo is asked for that
    /// code first, so a create retried after a cut-off (or an unclear answer) is not repeated.
    pub(super) async fn create_in_logo(
        &self,
        target: LogoTarget<'_>,
        run: &mut SyncRun,
        card: &Card,
    ) -> Result<(), PortError> {
        let code = code_for(&target.settings.code_prefix, &card.card_id);
        run.report.created_in_logo.read += 1;
        let Some(body) = arp_body(card, &code, &target.settings.fields) else {
            run.report.created_in_logo.skipped += 1;
            self.skip(
                target,
                &mut run.report,
                "logo.arp.create",
                vec![FieldError::new(
                    format!("cards[{}].tax_id", card.card_id),
                    "invalid_tax_id",
                    "a CRM customer needs a valid VKN or TCKN to become a cari",
                )],
            )
            .await;
            return Ok(());
        };
        let found = self
            .api
            .arps(target, &ArpFilter::Code(code.clone()), 0, 1)
            .await?;
        if found.records.is_empty() {
            match self.api.create_arp(target, &body).await {
                Ok(()) => run.report.created_in_logo.created += 1,
                Err(PortError::Rejected(why)) => {
                    run.report.created_in_logo.skipped += 1;
                    run.report.problem(Problem {
                        field: format!("cards[{}]", card.card_id),
                        code: "logo_refused_create".into(),
                        message: why,
                    });
                    return Ok(());
                }
                // An unclear answer: the next attempt looks the code up before creating.
                Err(other) => return Err(other),
            }
        } else {
            run.report.created_in_logo.updated += 1;
        }
        self.store
            .link_logo_code(target.tenant, &card.card_id, &code)
            .await
    }
}
