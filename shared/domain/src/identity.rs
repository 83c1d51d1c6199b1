//! Identity and matching: which cards an incoming phone, e-mail, tax id or partner id belongs
//! to, best match first, and the one way to "find the card or open a lead" every integration
//! uses.
//!
//! A phone or e-mail may belong to several cards (a company switchboard, a family), so an
//! identity leads to a collection. A number that is new still becomes exactly one lead when two
//! first messages race: creating a lead *claims* its identities with a conditional write, and
//! the loser finds the winner's card. A match that points at different cards for different keys
//! (phone → A, e-mail → B) is flagged as a possible duplicate on both; cards are never merged.

use std::sync::Arc;

use crate::error::PortError;
use crate::party::{CardKind, CardRef, IdentityKey};
use crate::ports::{CrmRepository, NewLead, NewLeadOutcome};
use crate::tenant::TenantId;

/// Customers first, then their contacts, then leads: a message from a number shared by a
/// customer and an old lead belongs on the customer's card.
pub fn kind_rank(kind: CardKind) -> u8 {
    match kind {
        CardKind::Customer => 0,
        CardKind::Contact => 1,
        CardKind::Lead => 2,
    }
}

/// Best first: by kind, then the oldest card (ids are time-ordered UUID v7).
pub fn rank_cards(cards: &mut [CardRef]) {
    cards.sort_by(|a, b| {
        kind_rank(a.kind)
            .cmp(&kind_rank(b.kind))
            .then_with(|| a.card_id.cmp(&b.card_id))
    });
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardMatch {
    /// The card the event belongs on.
    pub best: Option<CardRef>,
    /// Every card any key led to, best first, without repeats.
    pub candidates: Vec<CardRef>,
    /// Cards a key led to that the best card's keys did not: possible duplicates of `best`.
    pub conflicts: Vec<CardRef>,
}

/// What `find_or_create_lead` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landing {
    /// An existing card: record the interaction on `best`.
    Found(CardMatch),
    /// A new lead was created with the event as its first touch.
    Created(CardRef),
    /// The lead-creating event was already applied: nothing changed.
    Duplicate,
    /// No card, and the caller chose not to open a lead (settings, a reaction...).
    Declined,
}

#[derive(Clone)]
pub struct CardMatcher {
    repo: Arc<dyn CrmRepository>,
}

impl CardMatcher {
    pub fn new(repo: Arc<dyn CrmRepository>) -> Self {
        Self { repo }
    }

    /// `keys` in the caller's order of trust (tax id, partner id, phone, e-mail): the first key
    /// that finds a card decides the best match.
    pub async fn find(
        &self,
        tenant: &TenantId,
        keys: &[IdentityKey],
    ) -> Result<CardMatch, PortError> {
        let mut found = CardMatch::default();
        let mut per_key: Vec<Vec<CardRef>> = Vec::with_capacity(keys.len());
        for key in keys {
            let mut cards = self.repo.find_cards(tenant, key).await?;
            rank_cards(&mut cards);
            per_key.push(cards);
        }
        found.best = per_key.iter().find_map(|cards| cards.first().cloned());
        let Some(best) = &found.best else {
            return Ok(found);
        };
        for cards in &per_key {
            for card in cards {
                if !found.candidates.iter().any(|c| c.card_id == card.card_id) {
                    found.candidates.push(card.clone());
                }
            }
            // A key that knows cards, none of them the best: those cards may be the same party.
            if !cards.is_empty() && !cards.iter().any(|c| c.card_id == best.card_id) {
                for card in cards {
                    if !found.conflicts.iter().any(|c| c.card_id == card.card_id) {
                        found.conflicts.push(card.clone());
                    }
                }
            }
        }
        rank_cards(&mut found.candidates);
        Ok(found)
    }

    /// Flags each conflict as a possible duplicate of the best card, on both cards.
    pub async fn flag_conflicts(
        &self,
        tenant: &TenantId,
        found: &CardMatch,
        reason: &str,
    ) -> Result<(), PortError> {
        if let Some(best) = &found.best {
            for other in &found.conflicts {
                self.repo
                    .flag_possible_duplicate(tenant, best, other, reason)
                    .await?;
            }
        }
        Ok(())
    }

    /// Finds the event's card, or creates a lead from `new_lead` when none exists. A racing
    /// first event from the same identity makes the lead first: then this one finds it.
    pub async fn find_or_create_lead(
        &self,
        tenant: &TenantId,
        keys: &[IdentityKey],
        new_lead: impl Fn() -> Option<NewLead>,
    ) -> Result<Landing, PortError> {
        for _ in 0..2 {
            let found = self.find(tenant, keys).await?;
            if found.best.is_some() {
                return Ok(Landing::Found(found));
            }
            let Some(lead) = new_lead() else {
                return Ok(Landing::Declined);
            };
            match self.repo.create_lead(tenant, &lead).await? {
                NewLeadOutcome::Created => return Ok(Landing::Created(lead.card.as_ref())),
                NewLeadOutcome::Duplicate => return Ok(Landing::Duplicate),
                NewLeadOutcome::IdentityTaken => continue,
            }
        }
        Err(PortError::Unavailable(
            "the sender's card was created concurrently and is not readable yet; retrying".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::Card;
    use crate::phone::PhoneNumber;
    use crate::testing::MemoryCrm;

    fn phone(p: &str) -> PhoneNumber {
        PhoneNumber::parse(p).unwrap()
    }

    #[tokio::test]
    async fn a_shared_number_finds_every_card_best_first() {
        let crm = Arc::new(MemoryCrm::default());
        let t = TenantId::parse("demo").unwrap();
        let now = chrono::Utc::now();
        let switchboard = phone("0212 444 55 66");
        let mut lead =
            Card::person_customer("01-lead", "Eski Lead", vec![switchboard.clone()], now);
        lead.kind = CardKind::Lead;
        crm.create_card(&t, &lead).await.unwrap();
        crm.create_card(
            &t,
            &Card::person_customer("02-company", "Acme A.Ş.", vec![switchboard.clone()], now),
        )
        .await
        .unwrap();
        let matcher = CardMatcher::new(crm.clone());
        let found = matcher
            .find(&t, &[IdentityKey::Phone(switchboard)])
            .await
            .unwrap();
        assert_eq!(
            found.best.unwrap().card_id,
            "02-company",
            "customers before leads"
        );
        assert_eq!(found.candidates.len(), 2);
        assert!(
            found.conflicts.is_empty(),
            "one key, several cards: a collection, not a conflict"
        );
    }

    #[tokio::test]
    async fn keys_that_disagree_flag_a_possible_duplicate_on_both_cards_and_merge_nothing() {
        let crm = Arc::new(MemoryCrm::default());
        let t = TenantId::parse("demo").unwrap();
        let now = chrono::Utc::now();
        let a = Card::person_customer("a", "Ayşe", vec![phone("0533 123 45 67")], now);
        let b = Card {
            emails: vec!["ayse@ornek.com".into()],
            ..Card::person_customer("b", "A. Yılmaz", vec![], now)
        };
        crm.create_card(&t, &a).await.unwrap();
        crm.create_card(&t, &b).await.unwrap();
        let matcher = CardMatcher::new(crm.clone());
        let keys = [
            IdentityKey::Phone(phone("05331234567")),
            IdentityKey::Email("ayse@ornek.com".into()),
        ];
        let found = matcher.find(&t, &keys).await.unwrap();
        assert_eq!(
            found.best.as_ref().unwrap().card_id,
            "a",
            "the first key that finds a card wins"
        );
        assert_eq!(
            found
                .conflicts
                .iter()
                .map(|c| c.card_id.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        matcher
            .flag_conflicts(&t, &found, "web form: phone and e-mail")
            .await
            .unwrap();
        let on_a = crm.possible_duplicates(&t, "a").await.unwrap();
        let on_b = crm.possible_duplicates(&t, "b").await.unwrap();
        assert_eq!((on_a.len(), on_b.len()), (1, 1));
        assert_eq!(
            (
                on_a[0].other.card_id.as_str(),
                on_b[0].other.card_id.as_str()
            ),
            ("b", "a")
        );
        assert_eq!(crm.cards(&t).len(), 2, "never merged");
    }
}
