//! A lead as Graph returns it (`GET /{version}/{leadgen_id}`), and its mapping onto a
//! [`CapturedLead`]: standard question keys by default, a tenant's own keys on top.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::capture::{split_full_name, AdCampaign, CapturedLead};
use crate::consent::{records_for, ConsentSource, ConsentStatus};
use crate::ingress::json::id_text;
use crate::party::{LeadSource, Utm};
use crate::phone::PhoneNumber;
use crate::text::{fold_email, title_case_tr};

/// The fields the worker asks Graph for (explicitly: Graph returns only `id` by default for
/// some of them).
pub const LEAD_FIELDS: &str = "id,created_time,field_data,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,platform,is_organic,custom_disclaimer_responses";

/// Answers longer than this are cut: a form field is a line, not a document.
pub const MAX_ANSWER_CHARS: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct FieldDatum {
    pub name: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DisclaimerResponse {
    pub checkbox_key: String,
    /// `"1"` or `""` in Graph's examples; booleans accepted too.
    #[serde(default, deserialize_with = "loose_bool")]
    pub is_checked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct GraphLead {
    #[serde(deserialize_with = "id_string")]
    pub id: String,
    #[serde(default)]
    pub created_time: Option<String>,
    #[serde(default)]
    pub field_data: Vec<FieldDatum>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub ad_id: Option<String>,
    #[serde(default)]
    pub ad_name: Option<String>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub adset_id: Option<String>,
    #[serde(default)]
    pub adset_name: Option<String>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub campaign_id: Option<String>,
    #[serde(default)]
    pub campaign_name: Option<String>,
    #[serde(default, deserialize_with = "opt_id_string")]
    pub form_id: Option<String>,
    /// `fb` or `ig`.
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default, deserialize_with = "loose_bool")]
    pub is_organic: bool,
    #[serde(default)]
    pub custom_disclaimer_responses: Vec<DisclaimerResponse>,
}

fn id_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    id_text(&value).ok_or_else(|| serde::de::Error::custom("not an id"))
}

fn opt_id_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.as_ref().and_then(id_text))
}

fn loose_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => b,
        Some(serde_json::Value::Number(n)) => n.as_i64() == Some(1),
        Some(serde_json::Value::String(s)) => matches!(s.trim(), "1" | "true" | "TRUE"),
        _ => false,
    })
}

/// The lead field a form question fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadField {
    FullName,
    FirstName,
    LastName,
    Email,
    Phone,
    City,
    Company,
    JobTitle,
    Message,
    RequestedService,
    /// A yes/no question that is a consent to be contacted.
    Consent,
    /// Kept as a custom field (the default for any key not mapped).
    Custom,
}

/// Meta's standard keys ([contracts §2.4]); a tenant's mapping adds or overrides keys.
pub fn default_field(key: &str) -> LeadField {
    match key {
        "full_name" => LeadField::FullName,
        "first_name" => LeadField::FirstName,
        "last_name" => LeadField::LastName,
        "email" | "work_email" => LeadField::Email,
        "phone_number" | "work_phone_number" => LeadField::Phone,
        "city" => LeadField::City,
        "company_name" => LeadField::Company,
        "job_title" => LeadField::JobTitle,
        _ => LeadField::Custom,
    }
}

/// Graph's `2015-02-28T08:49:14+0000` (no colon in the offset), or RFC 3339.
pub fn parse_graph_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_ANSWER_CHARS {
        return text.to_string();
    }
    text.chars().take(MAX_ANSWER_CHARS).collect()
}

/// Maps a fetched lead. `mapping` is the tenant's (question key → field); `fallback_time` is the
/// webhook's `created_time` or the receipt time when Graph omits its own.
pub fn map_lead(
    lead: &GraphLead,
    mapping: &BTreeMap<String, LeadField>,
    fallback_time: DateTime<Utc>,
) -> CapturedLead {
    let captured_at = lead
        .created_time
        .as_deref()
        .and_then(parse_graph_time)
        .unwrap_or(fallback_time);
    let platform = match lead.platform.as_deref().map(str::trim) {
        Some("ig") | Some("instagram") => Some("instagram".to_string()),
        Some("fb") | Some("facebook") => Some("facebook".to_string()),
        Some(other) if !other.is_empty() => Some(other.to_lowercase()),
        _ => None,
    };
    let mut captured = CapturedLead::new(LeadSource::MetaLeadAds, &lead.id, captured_at);
    captured.utm = Utm {
        source: platform.clone().or_else(|| Some("facebook".into())),
        medium: Some(
            if lead.is_organic {
                "organic"
            } else {
                "paid_social"
            }
            .into(),
        ),
        campaign: lead.campaign_name.clone(),
        term: lead.adset_name.clone(),
        content: lead.ad_name.clone(),
        ..Utm::default()
    };
    captured.campaign = Some(AdCampaign {
        campaign_id: lead.campaign_id.clone(),
        campaign_name: lead.campaign_name.clone(),
        adset_id: lead.adset_id.clone(),
        adset_name: lead.adset_name.clone(),
        ad_id: lead.ad_id.clone(),
        ad_name: lead.ad_name.clone(),
        form_id: lead.form_id.clone(),
        platform,
        is_organic: lead.is_organic,
    });
    let mut consent_answers: Vec<(String, bool)> = Vec::new();
    for datum in &lead.field_data {
        let values: Vec<String> = datum
            .values
            .iter()
            .map(|v| cut(v))
            .filter(|v| !v.is_empty())
            .collect();
        let Some(first) = values.first().cloned() else {
            continue;
        };
        let field = mapping
            .get(&datum.name)
            .copied()
            .unwrap_or_else(|| default_field(&datum.name));
        match field {
            LeadField::FullName => {
                let (first_name, last_name) = split_full_name(&first);
                captured.first_name = captured.first_name.take().or(first_name);
                captured.last_name = captured.last_name.take().or(last_name);
            }
            // Explicit first/last answers win over a split full name.
            LeadField::FirstName => captured.first_name = Some(title_case_tr(&first)),
            LeadField::LastName => captured.last_name = Some(title_case_tr(&first)),
            LeadField::Email => match fold_email(&first) {
                Some(email) if captured.email.is_none() => captured.email = Some(email),
                Some(_) => {
                    captured.custom.insert(datum.name.clone(), values);
                }
                None => captured
                    .unusable
                    .push((datum.name.clone(), "not an e-mail address".into())),
            },
            LeadField::Phone => match PhoneNumber::parse(&first) {
                Ok(phone) if captured.phone.is_none() => captured.phone = Some(phone),
                Ok(_) => {
                    captured.custom.insert(datum.name.clone(), values);
                }
                Err(e) => captured.unusable.push((datum.name.clone(), e.to_string())),
            },
            LeadField::City => captured.city = Some(title_case_tr(&first)),
            LeadField::Company => captured.company = Some(first),
            LeadField::JobTitle => captured.job_title = Some(first),
            LeadField::Message => captured.message = Some(first),
            LeadField::RequestedService => captured.requested_service = Some(values.join(", ")),
            LeadField::Consent => {
                let yes = matches!(
                    crate::text::fold_tr(&first).as_str(),
                    "1" | "true" | "yes" | "evet" | "kabul" | "onay" | "onayliyorum"
                );
                consent_answers.push((datum.name.clone(), yes));
            }
            LeadField::Custom => {
                captured.custom.insert(datum.name.clone(), values);
            }
        }
    }
    for response in &lead.custom_disclaimer_responses {
        consent_answers.push((response.checkbox_key.clone(), response.is_checked));
    }
    let phone = captured.phone.as_ref().map(|p| p.as_str().to_string());
    for (key, given) in consent_answers {
        // An unticked optional box is not a refusal on record: only what was given is kept.
        if given {
            captured.consents.extend(records_for(
                phone.as_deref(),
                captured.email.as_deref(),
                ConsentStatus::Onay,
                ConsentSource::HsSosyalMedya,
                captured_at,
                &key,
            ));
        }
    }
    captured
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lead(value: serde_json::Value) -> GraphLead {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn standard_keys_map_onto_lead_fields_and_the_rest_stays_custom() {
        let graph = lead(json!({
            "id": 1234567890123456789u64,
            "created_time": "2026-11-24T08:49:14+0000",
            "campaign_id": "120210000000000001", "campaign_name": "Kasım Kasko",
            "adset_name": "İstanbul 25-45", "ad_name": "Video 1", "form_id": 9007199254740993u64,
            "platform": "ig", "is_organic": false,
            "field_data": [
                {"name": "full_name", "values": ["AYŞE NUR YILMAZ"]},
                {"name": "email", "values": ["Ayse.Yilmaz@ORNEK.com"]},
                {"name": "phone_number", "values": ["+90 533 123 45 67"]},
                {"name": "city", "values": ["istanbul"]},
                {"name": "ilgi_alani", "values": ["Kasko", "Trafik"]},
                {"name": "kvkk_onay", "values": ["Evet"]}
            ],
            "custom_disclaimer_responses": [{"checkbox_key": "optional_1", "is_checked": "1"},
                                            {"checkbox_key": "optional_2", "is_checked": ""}]
        }));
        let mapping = BTreeMap::from([("kvkk_onay".to_string(), LeadField::Consent)]);
        let at: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
        let c = map_lead(&graph, &mapping, at);
        assert_eq!(c.external_id, "1234567890123456789");
        assert_eq!(c.captured_at.to_rfc3339(), "2026-11-24T08:49:14+00:00");
        assert_eq!(
            (c.first_name.as_deref(), c.last_name.as_deref()),
            (Some("Ayşe Nur"), Some("Yılmaz"))
        );
        assert_eq!(c.email.as_deref(), Some("ayse.yilmaz@ornek.com"));
        assert_eq!(c.phone.as_ref().unwrap().as_str(), "+905331234567");
        assert_eq!(c.city.as_deref(), Some("İstanbul"));
        assert_eq!(c.custom["ilgi_alani"], vec!["Kasko", "Trafik"]);
        let campaign = c.campaign.as_ref().unwrap();
        assert_eq!(campaign.form_id.as_deref(), Some("9007199254740993"));
        assert_eq!(campaign.platform.as_deref(), Some("instagram"));
        assert_eq!(c.utm.source.as_deref(), Some("instagram"));
        assert_eq!(c.utm.medium.as_deref(), Some("paid_social"));
        assert_eq!(c.utm.campaign.as_deref(), Some("Kasım Kasko"));
        // kvkk_onay and optional_1 given (3 records each: MESAJ, ARAMA, EPOSTA); optional_2 not.
        assert_eq!(c.consents.len(), 6);
        assert!(c.note().contains("ilgi_alani: Kasko, Trafik"));
    }

    #[test]
    fn an_invalid_phone_is_kept_with_its_reason_and_explicit_names_win() {
        let graph = lead(json!({
            "id": "42",
            "field_data": [
                {"name": "first_name", "values": ["ismail"]},
                {"name": "full_name", "values": ["Başka Biri"]},
                {"name": "phone_number", "values": ["444 1 444"]},
                {"name": "email", "values": ["not-an-email"]}
            ]
        }));
        let at: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
        let c = map_lead(&graph, &BTreeMap::new(), at);
        assert_eq!(c.first_name.as_deref(), Some("İsmail"));
        assert_eq!(c.last_name.as_deref(), Some("Biri"));
        assert!(c.phone.is_none() && c.email.is_none());
        assert_eq!(c.unusable.len(), 2);
        assert_eq!(c.captured_at, at, "no created_time: the fallback");
        assert_eq!(c.utm.medium.as_deref(), Some("paid_social"));
        assert!(c.consents.is_empty());
    }
}
