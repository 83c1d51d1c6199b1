//! A lead captured by a form (Meta Lead Ads, a web form): the answers mapped onto lead fields,
//! consent, and where it came from. Both integrations produce a [`CapturedLead`]; one use case
//! ([`landing::LeadLanding`]) lands it on a card.

pub mod landing;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::ConsentRecord;
use crate::party::{LeadSource, Utm};
use crate::phone::PhoneNumber;
use crate::text::title_case_tr;

/// The ad a Lead Ads lead came from (ids and names as Graph gives them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdCampaign {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adset_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_id: Option<String>,
    /// `facebook` or `instagram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default)]
    pub is_organic: bool,
}

/// Who filled the form and what they said, mapped and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapturedLead {
    pub source: LeadSource,
    /// The partner's id of the submission (leadgen id; web-form submission id).
    pub external_id: String,
    pub captured_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<PhoneNumber>,
    /// Folded (the matching key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_service: Option<String>,
    /// Questions without a lead field, every answer kept (multi-value answers whole).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, Vec<String>>,
    /// Answers we could not use as given (an invalid phone), kept with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unusable: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<ConsentRecord>,
    #[serde(default)]
    pub utm: Utm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<AdCampaign>,
}

impl CapturedLead {
    /// A submission with nothing filled in yet; the integration's mapping fills it.
    pub fn new(source: LeadSource, external_id: &str, captured_at: DateTime<Utc>) -> Self {
        Self {
            source,
            external_id: external_id.to_string(),
            captured_at,
            first_name: None,
            last_name: None,
            phone: None,
            email: None,
            city: None,
            company: None,
            job_title: None,
            message: None,
            requested_service: None,
            custom: BTreeMap::new(),
            unusable: Vec::new(),
            consents: Vec::new(),
            utm: Utm::default(),
            campaign: None,
        }
    }

    pub fn display_name(&self) -> Option<String> {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }

    /// The lead's note: the message, then every custom answer and unusable answer, one per line.
    pub fn note(&self) -> String {
        let mut lines = Vec::new();
        if let Some(message) = &self.message {
            lines.push(message.clone());
        }
        if let Some(service) = &self.requested_service {
            lines.push(format!("Talep edilen hizmet: {service}"));
        }
        for (question, answers) in &self.custom {
            lines.push(format!("{question}: {}", answers.join(", ")));
        }
        for (field, reason) in &self.unusable {
            lines.push(format!("{field} (kullanılamadı: {reason})"));
        }
        lines.join("\n")
    }
}

/// Splits a full name the Turkish way: the last word is the surname, every word before it a
/// given name (`Ayşe Nur Yılmaz` → `Ayşe Nur` + `Yılmaz`); casing fixed with Turkish rules.
pub fn split_full_name(full: &str) -> (Option<String>, Option<String>) {
    let name = title_case_tr(full);
    match name.rsplit_once(' ') {
        Some((given, surname)) => (Some(given.to_string()), Some(surname.to_string())),
        None if name.is_empty() => (None, None),
        None => (Some(name), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_split_with_several_given_names_and_one_surname() {
        assert_eq!(
            split_full_name("AYŞE NUR YILMAZ"),
            (Some("Ayşe Nur".into()), Some("Yılmaz".into()))
        );
        assert_eq!(
            split_full_name("  ismail   ışık "),
            (Some("İsmail".into()), Some("Işık".into()))
        );
        assert_eq!(split_full_name("Cem"), (Some("Cem".into()), None));
        assert_eq!(split_full_name("   "), (None, None));
    }
}
