//! Customer cards: companies and people we sell to, their contacts, and leads.
//!
//! A card is found by its identity keys (E.164 phone, folded e-mail, tax id, external id); see
//! [`crate::identity`] for matching, claims and possible duplicates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::phone::PhoneNumber;
use crate::timeline::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardKind {
    Lead,
    Customer,
    Contact,
}

/// What an identity lookup returns: enough to route an interaction without reading the card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRef {
    pub card_id: String,
    pub kind: CardKind,
    pub display_name: String,
}

/// A key that finds cards: E.164 phone, folded e-mail, tax id, or a partner's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityKey {
    Phone(PhoneNumber),
    /// Already folded with [`crate::text::fold_email`].
    Email(String),
    /// TCKN or VKN digits.
    TaxId(String),
    /// A partner's id for the card: `("logo", "120.01.001")`, `("insurup", "...")`.
    External {
        system: String,
        id: String,
    },
}

impl IdentityKey {
    /// A tax id or a partner's id names one party: it belongs to one card. Phones and e-mails
    /// are shared (switchboards, families).
    pub fn is_exclusive(&self) -> bool {
        matches!(self, IdentityKey::TaxId(_) | IdentityKey::External { .. })
    }

    pub fn key(&self) -> String {
        match self {
            IdentityKey::Phone(p) => format!("PHONE#{}", p.as_str()),
            IdentityKey::Email(e) => format!("EMAIL#{e}"),
            IdentityKey::TaxId(t) => format!("TAX#{t}"),
            IdentityKey::External { system, id } => format!("EXT#{system}#{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadSource {
    #[serde(rename = "whatsapp")]
    WhatsApp,
    MetaLeadAds,
    WebForm,
    Phone,
    /// Opened from an InsurUp event (a policy holder no card knew).
    #[serde(rename = "insurup")]
    InsurUp,
    /// A current account (cari) brought over from Logo ERP.
    Logo,
    Other,
}

impl LeadSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            LeadSource::WhatsApp => "whatsapp",
            LeadSource::MetaLeadAds => "meta_lead_ads",
            LeadSource::WebForm => "web_form",
            LeadSource::Phone => "phone",
            LeadSource::InsurUp => "insurup",
            LeadSource::Logo => "logo",
            LeadSource::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    New,
    Contacted,
    Qualified,
    Converted,
    Lost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyType {
    Company,
    Person,
}

/// The five UTM tags plus the ad click ids (filled by web forms and Lead Ads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
    /// Microsoft Advertising's click id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msclkid: Option<String>,
}

/// An ad that brought the contact (WhatsApp click-to-chat ads carry one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdReferral {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click_id: Option<String>,
}

/// One touch for attribution: the first and the latest are kept on a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touch {
    pub channel: Channel,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<AdReferral>,
    /// The campaign tags of this touch (forms): last-touch attribution moves with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm: Option<Utm>,
}

/// A person's or company's details beyond the display name (form answers, ERP fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// A postal address (from an ERP's current account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Profile {
    pub fn is_empty(&self) -> bool {
        self == &Profile::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadDetails {
    pub source: LeadSource,
    pub status: LeadStatus,
    /// First-touch attribution: the tags the lead came with.
    #[serde(default)]
    pub utm: Utm,
    /// The Lead Ads campaign, ad set, ad and form the lead came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<crate::capture::AdCampaign>,
    pub first_touch: Touch,
    pub last_touch: Touch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerDetails {
    pub party_type: PartyType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
    /// Where a customer card opened by an integration came from (InsurUp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<LeadSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactDetails {
    /// The company card this person belongs to.
    pub customer_card_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A customer, contact or lead card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub card_id: String,
    pub kind: CardKind,
    pub display_name: String,
    #[serde(default)]
    pub phones: Vec<PhoneNumber>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_ids: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Profile::is_empty")]
    pub profile: Profile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<LeadDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<ContactDetails>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Card {
    /// A customer who is a person (a policy holder, a retail buyer), known by phone.
    pub fn person_customer(
        card_id: &str,
        display_name: &str,
        phones: Vec<PhoneNumber>,
        now: DateTime<Utc>,
    ) -> Self {
        Card {
            card_id: card_id.into(),
            kind: CardKind::Customer,
            display_name: display_name.into(),
            phones,
            emails: vec![],
            owner: None,
            external_ids: BTreeMap::new(),
            profile: Profile::default(),
            lead: None,
            customer: Some(CustomerDetails {
                party_type: PartyType::Person,
                tax_id: None,
                source: None,
            }),
            contact: None,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn as_ref(&self) -> CardRef {
        CardRef {
            card_id: self.card_id.clone(),
            kind: self.kind,
            display_name: self.display_name.clone(),
        }
    }

    /// Every identity key this card has (phones, e-mails, tax id, external ids), each once.
    pub fn identity_keys(&self) -> Vec<IdentityKey> {
        let mut keys: Vec<IdentityKey> = Vec::new();
        keys.extend(self.phones.iter().cloned().map(IdentityKey::Phone));
        keys.extend(self.emails.iter().cloned().map(IdentityKey::Email));
        if let Some(tax) = self.customer.as_ref().and_then(|c| c.tax_id.clone()) {
            keys.push(IdentityKey::TaxId(tax));
        }
        keys.extend(
            self.external_ids
                .iter()
                .map(|(system, id)| IdentityKey::External {
                    system: system.clone(),
                    id: id.clone(),
                }),
        );
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert(k.key()));
        keys
    }
}

/// A free-text note on a card (a new lead gets the first message as its note).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub note_id: String,
    pub card_id: String,
    pub text: String,
    /// `system:whatsapp` for notes written by an integration, else a CRM user id.
    pub author: String,
    pub created_at: DateTime<Utc>,
}
