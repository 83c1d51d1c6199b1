//! Consent in İYS's shape (İleti Yönetim Sistemi, Turkey's commercial-message consent registry):
//! recipient, channel type, source, status, date, recipient type. Lead Ads checkboxes, web-form
//! checkboxes, InsurUp ETK events and Express unsubscribes all become these records.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// İYS `type`: the channel a consent covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentChannel {
    /// SMS and WhatsApp messages.
    Mesaj,
    /// Voice calls.
    Arama,
    Eposta,
}

impl ConsentChannel {
    pub fn as_str(&self) -> &'static str {
        match self {
            ConsentChannel::Mesaj => "MESAJ",
            ConsentChannel::Arama => "ARAMA",
            ConsentChannel::Eposta => "EPOSTA",
        }
    }
}

/// İYS `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentStatus {
    Onay,
    Ret,
}

/// İYS `source`: where the consent was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConsentSource {
    /// Social media (a Lead Ads form).
    HsSosyalMedya,
    /// The company's web site.
    HsWeb,
    /// Given to a partner system (InsurUp, Express) and reported to us.
    HsEntegrasyon,
    /// By SMS.
    HsMesaj,
    /// By e-mail.
    HsEposta,
    /// On paper or in person.
    HsFizikselOrtam,
    /// Another electronic medium (an integration that names none of the above).
    HsEortam,
}

/// İYS `recipientType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RecipientType {
    Bireysel,
    Tacir,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// E.164 phone for MESAJ/ARAMA, folded e-mail for EPOSTA.
    pub recipient: String,
    #[serde(rename = "type")]
    pub channel: ConsentChannel,
    pub source: ConsentSource,
    pub status: ConsentStatus,
    pub consent_date: DateTime<Utc>,
    pub recipient_type: RecipientType,
    /// What the person saw and ticked (the checkbox key or label), for the audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

/// Records for one ticked (or explicitly unticked) box: a phone gets MESAJ and ARAMA, an e-mail
/// EPOSTA. Nothing is recorded for a recipient we do not have.
pub fn records_for(
    phone: Option<&str>,
    email: Option<&str>,
    status: ConsentStatus,
    source: ConsentSource,
    at: DateTime<Utc>,
    evidence: &str,
) -> Vec<ConsentRecord> {
    let record = |recipient: &str, channel| ConsentRecord {
        recipient: recipient.to_string(),
        channel,
        source,
        status,
        consent_date: at,
        recipient_type: RecipientType::Bireysel,
        evidence: Some(evidence.to_string()),
    };
    let mut records = Vec::new();
    if let Some(phone) = phone {
        records.push(record(phone, ConsentChannel::Mesaj));
        records.push(record(phone, ConsentChannel::Arama));
    }
    if let Some(email) = email {
        records.push(record(email, ConsentChannel::Eposta));
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_iys_names_on_the_wire() {
        let at: DateTime<Utc> = "2026-11-24T09:00:00Z".parse().unwrap();
        let records = records_for(
            Some("+905331234567"),
            Some("ayse@ornek.com"),
            ConsentStatus::Onay,
            ConsentSource::HsSosyalMedya,
            at,
            "optional_1",
        );
        assert_eq!(records.len(), 3);
        let json = serde_json::to_value(&records[0]).unwrap();
        assert_eq!(json["type"], "MESAJ");
        assert_eq!(json["source"], "HS_SOSYAL_MEDYA");
        assert_eq!(json["status"], "ONAY");
        assert_eq!(json["recipient_type"], "BIREYSEL");
        assert_eq!(records[2].channel, ConsentChannel::Eposta);
        for r in &records {
            assert_eq!(serde_json::to_value(r.channel).unwrap(), r.channel.as_str());
        }
        assert!(records_for(
            None,
            None,
            ConsentStatus::Ret,
            ConsentSource::HsWeb,
            at,
            "x"
        )
        .is_empty());
    }
}
