//! Whose card an InsurUp event belongs on: the customer as the event knows it, matched by
//! InsurUp's id, identity number, phone, e-mail; fetched from InsurUp once when the event lacks
//! it; opened as a new customer card (source InsurUp) when nobody has its keys.

use chrono::{DateTime, Utc};

use crate::envelope::TraceId;
use crate::error::PortError;
use crate::identity::CardMatcher;
use crate::insurup::event::*;
use crate::party::{Card, CardRef, CustomerDetails, IdentityKey, LeadSource, PartyType};
use crate::phone::PhoneNumber;
use crate::ports::NewLeadOutcome;
use crate::tax_id::TaxId;
use crate::tenant::TenantId;
use crate::text::fold_email;

use super::worker::{InsurUpWorker, EXTERNAL_SYSTEM};

/// What is known of a customer from an event, to find (or open) the card.
#[derive(Debug, Clone, Default)]
pub(super) struct Customer {
    pub(super) insurup_id: Option<String>,
    pub(super) identity: Option<String>,
    pub(super) phone: Option<String>,
    pub(super) email: Option<String>,
    pub(super) name: Option<String>,
    pub(super) company: bool,
}

impl Customer {
    pub(super) fn keys(&self) -> Vec<IdentityKey> {
        let mut keys = Vec::new();
        if let Some(id) = &self.insurup_id {
            keys.push(IdentityKey::External {
                system: EXTERNAL_SYSTEM.into(),
                id: id.clone(),
            });
        }
        if let Some(tax) = self.identity.as_deref().and_then(|t| TaxId::parse(t).ok()) {
            keys.push(IdentityKey::TaxId(tax.as_str().to_string()));
        }
        if let Some(phone) = self
            .phone
            .as_deref()
            .and_then(|p| PhoneNumber::parse(p).ok())
        {
            keys.push(IdentityKey::Phone(phone));
        }
        if let Some(email) = self.email.as_deref().and_then(fold_email) {
            keys.push(IdentityKey::Email(email));
        }
        keys
    }

    /// This customer's facts, missing ones taken from `other` (InsurUp's own record).
    pub(super) fn or(self, other: Customer) -> Self {
        let pick = |mine: Option<String>, theirs: Option<String>| {
            mine.filter(|v| !v.trim().is_empty()).or(theirs)
        };
        Customer {
            insurup_id: pick(self.insurup_id, other.insurup_id),
            identity: pick(self.identity, other.identity),
            phone: pick(self.phone, other.phone),
            email: pick(self.email, other.email),
            name: pick(self.name, other.name),
            company: self.company || other.company,
        }
    }

    pub(super) fn from_model(model: &CustomerModel) -> Self {
        Customer {
            insurup_id: None,
            identity: model.identity_number.clone().or(model.tax_number.clone()),
            phone: model.phone_number.as_ref().and_then(PhoneNumberModel::text),
            email: model.email.as_ref().and_then(|e| e.value.clone()),
            name: model.full_name.clone().or(model.title.clone()),
            company: model.kind.eq_ignore_ascii_case("company"),
        }
    }

    pub(super) fn from_changed(c: &CustomerChanged) -> Self {
        let person = [c.first_name.as_deref(), c.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        Customer {
            insurup_id: Some(c.customer_id.clone()),
            identity: c.identity_number.clone().or(c.tax_number.clone()),
            phone: c.phone_number.clone(),
            email: c.email.clone(),
            name: c
                .company_title
                .clone()
                .or((!person.trim().is_empty()).then_some(person)),
            company: c
                .customer_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("company")),
        }
    }
}

impl InsurUpWorker {
    /// The card of `customer`, opened (a customer, source InsurUp) when nobody has its keys.
    /// With only InsurUp's id and no name, InsurUp is asked for the rest first.
    pub(super) async fn card_for(
        &self,
        tenant: &TenantId,
        mut customer: Customer,
        trace: &TraceId,
        now: DateTime<Utc>,
    ) -> Result<(CardRef, bool), PortError> {
        let matcher = CardMatcher::new(self.crm.clone());
        let mut fetched = false;
        for _ in 0..3 {
            let found = matcher.find(tenant, &customer.keys()).await?;
            if let Some(best) = found.best.clone() {
                matcher
                    .flag_conflicts(tenant, &found, "InsurUp: identity number, phone and e-mail")
                    .await?;
                return Ok((best, false));
            }
            // Asked once: InsurUp's record fills what the event lacks (the name, a phone).
            if customer.name.is_none() && !fetched {
                if let Some(id) = customer.insurup_id.clone() {
                    let record = self.source.customer(tenant, &id, trace).await?;
                    customer = customer.or(Customer::from_changed(&record));
                    fetched = true;
                    continue;
                }
            }
            let card = self.new_customer(&customer, now);
            match self.crm.create_card(tenant, &card).await? {
                NewLeadOutcome::Created => return Ok((card.as_ref(), true)),
                // A racing event opened this customer: find it on the next round.
                NewLeadOutcome::Duplicate | NewLeadOutcome::IdentityTaken => continue,
            }
        }
        Err(PortError::Unavailable(
            "the customer's card was created concurrently and is not readable yet".into(),
        ))
    }

    fn new_customer(&self, customer: &Customer, now: DateTime<Utc>) -> Card {
        let tax = customer
            .identity
            .as_deref()
            .and_then(|t| TaxId::parse(t).ok())
            .map(|t| t.as_str().to_string());
        let mut card = Card::person_customer(
            &self.log.ids().new_id(),
            customer.name.as_deref().unwrap_or("InsurUp müşterisi"),
            customer
                .phone
                .as_deref()
                .and_then(|p| PhoneNumber::parse(p).ok())
                .into_iter()
                .collect(),
            now,
        );
        card.emails = customer
            .email
            .as_deref()
            .and_then(fold_email)
            .into_iter()
            .collect();
        if let Some(id) = &customer.insurup_id {
            card.external_ids
                .insert(EXTERNAL_SYSTEM.to_string(), id.clone());
        }
        card.customer = Some(CustomerDetails {
            party_type: if customer.company {
                PartyType::Company
            } else {
                PartyType::Person
            },
            tax_id: tax,
            source: Some(LeadSource::InsurUp),
        });
        card
    }

    /// The card of an InsurUp customer known by id (fetched from InsurUp when new to us).
    pub(super) async fn card_of_customer(
        &self,
        tenant: &TenantId,
        customer_id: &str,
        trace: &TraceId,
        now: DateTime<Utc>,
    ) -> Result<(CardRef, bool), PortError> {
        let customer = Customer {
            insurup_id: Some(customer_id.to_string()),
            ..Customer::default()
        };
        self.card_for(tenant, customer, trace, now).await
    }

    pub(super) async fn card_ref(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<CardRef, PortError> {
        self.crm
            .card(tenant, card_id)
            .await?
            .map(|c| c.as_ref())
            .ok_or_else(|| PortError::Rejected(format!("card {card_id} does not exist (deleted?)")))
    }

    /// The proposal's card (linked when its premiums arrived), else InsurUp's insured customer.
    pub(super) async fn card_of_proposal(
        &self,
        tenant: &TenantId,
        proposal_id: &str,
        trace: &TraceId,
        now: DateTime<Utc>,
    ) -> Result<(CardRef, bool), PortError> {
        if let Some(card_id) = self
            .policies
            .linked(tenant, "proposal", proposal_id)
            .await?
        {
            return Ok((self.card_ref(tenant, &card_id).await?, false));
        }
        let customer_id = self
            .source
            .proposal_customer(tenant, proposal_id, trace)
            .await?;
        let found = self
            .card_of_customer(tenant, &customer_id, trace, now)
            .await?;
        self.policies
            .link(tenant, "proposal", proposal_id, &found.0.card_id)
            .await?;
        Ok(found)
    }
}
