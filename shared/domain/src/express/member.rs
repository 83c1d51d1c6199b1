//! Express members and what their state means for the CRM: the e-mail consent (İYS-shaped)
//! and whether it changed since the last night.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentChannel, ConsentRecord, ConsentSource, ConsentStatus, RecipientType};
use crate::timeline::{Channel, Direction, TimelineEntry};

/// A list in Express (the seed's Email List).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpressList {
    pub id: String,
    pub name: String,
}

/// A member as Express reports it (read by the client from its wire form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    /// Folded ([`crate::text::fold_email`]).
    pub email: String,
    /// Whether Express holds an e-mail permission (İYS ONAY) for the member.
    pub permission: bool,
    /// Unsubscribed through a campaign's link.
    pub unsubscribed: bool,
    /// When the permission or the unsubscribe happened, as Express says.
    pub changed_at: Option<DateTime<Utc>>,
    /// İYS `source` Express holds for the permission (`HS_WEB`...), if any.
    pub source: Option<String>,
}

/// The member's e-mail consent in İYS terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    pub status: ConsentStatus,
    pub date: DateTime<Utc>,
    pub source: ConsentSource,
}

impl Member {
    /// ONAY while the permission stands and the member has not unsubscribed; RET otherwise.
    /// An unsubscribe came through the campaign e-mail (`HS_EPOSTA`); a permission keeps the
    /// source Express names, else it was given to a partner system (`HS_ENTEGRASYON`).
    /// Without a date from Express, `seen_at` (the night it was first seen so).
    pub fn consent(&self, seen_at: DateTime<Utc>) -> ConsentState {
        let date = self.changed_at.unwrap_or(seen_at);
        if self.unsubscribed || !self.permission {
            return ConsentState {
                status: ConsentStatus::Ret,
                date,
                source: if self.unsubscribed {
                    ConsentSource::HsEposta
                } else {
                    self.named_source().unwrap_or(ConsentSource::HsEntegrasyon)
                },
            };
        }
        ConsentState {
            status: ConsentStatus::Onay,
            date,
            source: self.named_source().unwrap_or(ConsentSource::HsEntegrasyon),
        }
    }

    fn named_source(&self) -> Option<ConsentSource> {
        serde_json::from_value(serde_json::Value::String(self.source.clone()?)).ok()
    }
}

/// What the CRM last learnt of a member: the cards of its address and its consent then. One
/// item per member: the nightly poll compares against it, so only changes are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberLink {
    pub member_id: String,
    pub email: String,
    /// Every card carrying the address (İYS keeps one state per recipient); empty when the
    /// CRM has none yet.
    #[serde(default)]
    pub card_ids: Vec<String>,
    pub consent: ConsentState,
}

/// Nights between two look-ups of an address no card carried (a card may have come since):
/// each night a seventh of such members is looked up again, by a stable share of their id, so a
/// large list of people the CRM does not know costs a seventh of its queries each night.
pub const RECHECK_NIGHTS: u32 = 7;

/// Whether tonight is the night to look a member's address up again.
pub fn recheck_tonight(member_id: &str, now: DateTime<Utc>) -> bool {
    use chrono::Datelike;
    use sha2::{Digest, Sha256};
    let share = Sha256::digest(member_id.as_bytes())[0] as u32 % RECHECK_NIGHTS;
    share == now.num_days_from_ce() as u32 % RECHECK_NIGHTS
}

/// A consent change for the CRM: the link's new state, and for each card the consent record
/// and (for a change from a known state) the timeline entry that tells it.
#[derive(Debug, Clone)]
pub struct ConsentWrite {
    pub link: MemberLink,
    pub records: Vec<(String, ConsentRecord)>,
    pub entries: Vec<TimelineEntry>,
}

/// The write a member's state calls for against what was stored: `None` when nothing changed.
/// A member seen for the first time sets the card's consent without a timeline entry (the
/// state is not news); later flips, both ways, get one.
pub fn consent_write(
    member: &Member,
    stored: Option<&MemberLink>,
    card_ids: Vec<String>,
    seen_at: DateTime<Utc>,
    trace_id: &str,
) -> Option<ConsentWrite> {
    let consent = member.consent(seen_at);
    let cards_changed = stored.is_some_and(|s| s.card_ids != card_ids);
    if let Some(stored) = stored {
        if stored.consent.status == consent.status && !cards_changed {
            return None;
        }
    }
    let flipped = stored.is_some_and(|s| s.consent.status != consent.status);
    // Cards that newly carry the address get the current state too.
    let new_cards: Vec<&String> = match stored {
        Some(s) if !flipped => card_ids
            .iter()
            .filter(|c| !s.card_ids.contains(c))
            .collect(),
        _ => card_ids.iter().collect(),
    };
    let record = ConsentRecord {
        recipient: member.email.clone(),
        channel: ConsentChannel::Eposta,
        source: consent.source,
        status: consent.status,
        consent_date: consent.date,
        recipient_type: RecipientType::Bireysel,
        evidence: Some(format!("euromsg-express member {}", member.member_id)),
    };
    let records = new_cards
        .iter()
        .map(|card| ((*card).clone(), record.clone()))
        .collect();
    let entries = match flipped {
        true => card_ids
            .iter()
            .map(|card| consent_entry(card, member, &consent, trace_id))
            .collect(),
        false => vec![],
    };
    Some(ConsentWrite {
        link: MemberLink {
            member_id: member.member_id.clone(),
            email: member.email.clone(),
            card_ids,
            consent,
        },
        records,
        entries,
    })
}

/// "E-posta izni: RET (abonelikten çıktı)" on the card's timeline.
fn consent_entry(
    card_id: &str,
    member: &Member,
    consent: &ConsentState,
    trace_id: &str,
) -> TimelineEntry {
    let (kind, text) = match (consent.status, member.unsubscribed) {
        (ConsentStatus::Onay, _) => (
            "email_consent_given",
            "E-posta izni: ONAY (Euromsg Express)",
        ),
        (ConsentStatus::Ret, true) => (
            "email_unsubscribed",
            "E-posta izni: RET, abonelikten çıktı (Euromsg Express)",
        ),
        (ConsentStatus::Ret, false) => (
            "email_consent_withdrawn",
            "E-posta izni: RET (Euromsg Express)",
        ),
    };
    let status = match consent.status {
        ConsentStatus::Onay => "ONAY",
        ConsentStatus::Ret => "RET",
    };
    TimelineEntry {
        entry_id: format!(
            "express-consent-{}-{status}-{}",
            member.member_id,
            consent.date.timestamp()
        ),
        card_id: card_id.to_string(),
        channel: Channel::Email,
        direction: Direction::Inbound,
        kind: kind.into(),
        text: text.into(),
        external_id: Some(member.member_id.clone()),
        attachment: None,
        details: serde_json::json!({ "email": member.email, "status": status, "source": consent.source }),
        occurred_at: consent.date,
        trace_id: trace_id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(permission: bool, unsubscribed: bool) -> Member {
        Member {
            member_id: "m1".into(),
            email: "ayse@ornek.com".into(),
            permission,
            unsubscribed,
            changed_at: Some("2026-11-20T08:00:00Z".parse().unwrap()),
            source: Some("HS_WEB".into()),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-26T23:30:00Z".parse().unwrap()
    }

    #[test]
    fn permission_and_unsubscribe_read_as_iys_states() {
        let onay = member(true, false).consent(now());
        assert_eq!(
            (onay.status, onay.source),
            (ConsentStatus::Onay, ConsentSource::HsWeb)
        );
        let out = member(true, true).consent(now());
        assert_eq!(
            (out.status, out.source),
            (ConsentStatus::Ret, ConsentSource::HsEposta)
        );
        let mut unknown = member(true, false);
        unknown.source = Some("HS_SOMETHING_NEW".into());
        unknown.changed_at = None;
        let state = unknown.consent(now());
        assert_eq!(
            (state.source, state.date),
            (ConsentSource::HsEntegrasyon, now())
        );
    }

    #[test]
    fn every_member_is_rechecked_once_a_week() {
        let nights = (0..7).map(|d| now() + chrono::Duration::days(d));
        for id in ["m1", "m2", "12345", "uye-9"] {
            let times = nights.clone().filter(|n| recheck_tonight(id, *n)).count();
            assert_eq!(times, 1, "{id}");
        }
    }

    #[test]
    fn only_changes_are_written_and_flips_both_ways_are_told() {
        let cards = vec!["c1".to_string()];
        let first = consent_write(&member(true, false), None, cards.clone(), now(), "t").unwrap();
        assert_eq!(
            (first.records.len(), first.entries.len()),
            (1, 0),
            "baseline: no entry"
        );
        let same = consent_write(
            &member(true, false),
            Some(&first.link),
            cards.clone(),
            now(),
            "t",
        );
        assert!(same.is_none(), "nothing changed, nothing written");
        let out = consent_write(
            &member(true, true),
            Some(&first.link),
            cards.clone(),
            now(),
            "t",
        )
        .unwrap();
        assert_eq!(out.records[0].1.status, ConsentStatus::Ret);
        assert_eq!(out.entries[0].kind, "email_unsubscribed");
        let back = consent_write(
            &member(true, false),
            Some(&out.link),
            cards.clone(),
            now(),
            "t",
        )
        .unwrap();
        assert_eq!(back.entries[0].kind, "email_consent_given");
        assert_ne!(back.entries[0].entry_id, out.entries[0].entry_id);
        // A card that newly carries the address gets the state, without an entry.
        let more = vec!["c1".to_string(), "c2".to_string()];
        let added =
            consent_write(&member(true, false), Some(&back.link), more, now(), "t").unwrap();
        assert_eq!(added.records.len(), 1);
        assert_eq!(added.records[0].0, "c2");
        assert!(added.entries.is_empty());
    }
}
