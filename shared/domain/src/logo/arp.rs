//! Logo current accounts (cari, `Arps`) and CRM customer cards, both ways (seed 000 §3).
//!
//! Field names are Logo REST's (contracts.md §5.5), all here. The tax number goes to `TAX_ID`
//! (a VKN, 10 digits, companies) or `TCKNO` (a TCKN, 11 digits, persons) by length and
//! checksum; a record whose tax number is missing or invalid is refused with the field named,
//! never guessed.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::FieldError;
use crate::party::PartyType;
use crate::phone::PhoneNumber;
use crate::tax_id::TaxId;
use crate::text::fold_email;

/// A Logo `Arps` record as the REST service lists it (the fields the sync uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct LogoArp {
    #[serde(default)]
    pub internal_reference: Option<i64>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub tax_id: Option<String>,
    #[serde(default)]
    pub tckno: Option<String>,
    #[serde(default)]
    pub telephone1: Option<String>,
    #[serde(default)]
    pub cell_phone: Option<String>,
    #[serde(default)]
    pub e_mail: Option<String>,
    #[serde(default)]
    pub address1: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// `dd.MM.yyyy HH:mm:ss` or ISO, as the server writes it.
    #[serde(default)]
    pub date_modified: Option<String>,
    /// Every other field, for a tenant whose mapping names one (`TELEPHONE2`, `E_MAIL2`).
    #[serde(flatten, default, skip_serializing_if = "BTreeMap::is_empty")]
    pub other: BTreeMap<String, Value>,
}

/// Where a tenant's Logo keeps the contact fields the CRM maps (the seed's defaults:
/// `CELL_PHONE` and `TELEPHONE1`, `E_MAIL`, `ADDRESS1`, `CITY`). The code, title and tax
/// number are Logo's own and not remapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoFields {
    /// Read in this order; a new cari gets a mobile number in the first, another in the second.
    #[serde(default = "default_phones")]
    pub phones: Vec<String>,
    #[serde(default = "default_email")]
    pub email: String,
    #[serde(default = "default_address")]
    pub address: String,
    #[serde(default = "default_city")]
    pub city: String,
}

fn default_phones() -> Vec<String> {
    vec!["CELL_PHONE".into(), "TELEPHONE1".into()]
}
fn default_email() -> String {
    "E_MAIL".into()
}
fn default_address() -> String {
    "ADDRESS1".into()
}
fn default_city() -> String {
    "CITY".into()
}

impl Default for LogoFields {
    fn default() -> Self {
        LogoFields {
            phones: default_phones(),
            email: default_email(),
            address: default_address(),
            city: default_city(),
        }
    }
}

/// A cari read into what a CRM customer card needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoCustomer {
    pub code: String,
    pub title: String,
    pub tax_id: TaxId,
    pub party_type: PartyType,
    pub phones: Vec<PhoneNumber>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub modified_at: Option<DateTime<Utc>>,
}

fn text(value: &Option<String>) -> Option<String> {
    value.as_deref().and_then(text_of)
}

fn text_of(value: &str) -> Option<String> {
    Some(value.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Logo's modification time: ISO or `dd.MM.yyyy HH:mm:ss` (Turkey time, as Logo shows it).
pub fn logo_time(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Some(at.with_timezone(&Utc));
    }
    [
        "%d.%m.%Y %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
    .and_then(|local| {
        local
            .and_local_timezone(chrono_tz::Europe::Istanbul)
            .single()
            .map(|t| t.with_timezone(&Utc))
    })
}

impl LogoArp {
    /// A field by its Logo name, as text.
    pub fn field(&self, name: &str) -> Option<String> {
        let known = match name {
            "CELL_PHONE" => &self.cell_phone,
            "TELEPHONE1" => &self.telephone1,
            "E_MAIL" => &self.e_mail,
            "ADDRESS1" => &self.address1,
            "CITY" => &self.city,
            other => {
                return match self.other.get(other) {
                    Some(Value::String(text)) => text_of(text),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                }
            }
        };
        text(known)
    }

    /// [`Self::read_with`] the seed's default fields.
    pub fn read(&self) -> Result<LogoCustomer, Vec<FieldError>> {
        self.read_with(&LogoFields::default())
    }

    /// The card's facts, or every problem with the record, each naming Logo's field (and the
    /// record by its code, for the run's error records).
    pub fn read_with(&self, fields: &LogoFields) -> Result<LogoCustomer, Vec<FieldError>> {
        let mut errors = Vec::new();
        let code = text(&self.code);
        let at = |field: &str| match &code {
            Some(code) => format!("Arps[{code}].{field}"),
            None => format!(
                "Arps[ref {}].{field}",
                self.internal_reference.unwrap_or_default()
            ),
        };
        if code.is_none() {
            errors.push(FieldError::missing(at("CODE")));
        }
        let title = text(&self.title);
        if title.is_none() {
            errors.push(FieldError::missing(at("TITLE")));
        }
        // A company's VKN in TAX_ID, a person's TCKN in TCKNO; either field may hold either.
        let presented = text(&self.tax_id)
            .map(|t| ("TAX_ID", t))
            .or_else(|| text(&self.tckno).map(|t| ("TCKNO", t)));
        let tax_id = match presented {
            None => {
                errors.push(FieldError::new(
                    at("TAX_ID"),
                    "missing",
                    "neither TAX_ID (VKN) nor TCKNO (TCKN) is set",
                ));
                None
            }
            Some((field, value)) => match TaxId::parse(&value) {
                Ok(tax) => Some(tax),
                Err(e) => {
                    errors.push(FieldError::new(at(field), e.code(), e.to_string()));
                    None
                }
            },
        };
        let phones: Vec<PhoneNumber> = fields
            .phones
            .iter()
            .filter_map(|name| self.field(name))
            .filter_map(|p| PhoneNumber::parse(&p).ok())
            .fold(Vec::new(), |mut all, p| {
                if !all.contains(&p) {
                    all.push(p);
                }
                all
            });
        if !errors.is_empty() {
            return Err(errors);
        }
        let tax_id = tax_id.unwrap_or_else(|| unreachable!("an error was recorded"));
        Ok(LogoCustomer {
            party_type: if tax_id.kind() == "vkn" {
                PartyType::Company
            } else {
                PartyType::Person
            },
            code: code.unwrap_or_default(),
            title: title.unwrap_or_default(),
            tax_id,
            phones,
            email: self.field(&fields.email).as_deref().and_then(fold_email),
            address: self.field(&fields.address),
            city: self.field(&fields.city),
            modified_at: self.date_modified.as_deref().and_then(logo_time),
        })
    }
}

/// What the CRM knows of a customer that Logo does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrmCustomer<'a> {
    pub title: &'a str,
    pub tax_id: &'a TaxId,
    pub phone: Option<&'a PhoneNumber>,
    pub email: Option<&'a str>,
    pub address: Option<&'a str>,
    pub city: Option<&'a str>,
}

/// The `POST /Arps` body for a CRM customer, under the code the CRM assigns (so a retried run
/// finds it by code instead of creating it twice). `ACCOUNT_TYPE` 3: buyer and seller.
pub fn new_arp(customer: &CrmCustomer<'_>, code: &str) -> Value {
    new_arp_with(customer, code, &LogoFields::default())
}

/// [`new_arp`] into the tenant's fields.
pub fn new_arp_with(customer: &CrmCustomer<'_>, code: &str, fields: &LogoFields) -> Value {
    let mut body = json!({
        "CODE": code,
        "TITLE": customer.title,
        "ACCOUNT_TYPE": 3,
    });
    match customer.tax_id.kind() {
        "vkn" => body["TAX_ID"] = json!(customer.tax_id.as_str()),
        _ => {
            body["TCKNO"] = json!(customer.tax_id.as_str());
            body["PERSCOMPANY"] = json!(1);
        }
    }
    if let Some(phone) = customer.phone {
        // Logo keeps national numbers: 0 and the ten digits.
        let national = phone.national_display().replace(' ', "");
        let slot = if phone.is_turkish_mobile() { 0 } else { 1 };
        if let Some(field) = fields.phones.get(slot).or(fields.phones.first()) {
            body[field.as_str()] = json!(national);
        }
    }
    if let Some(email) = customer.email {
        body[fields.email.as_str()] = json!(email);
    }
    if let Some(address) = customer.address {
        body[fields.address.as_str()] = json!(address);
    }
    if let Some(city) = customer.city {
        body[fields.city.as_str()] = json!(city);
    }
    body
}

/// `at` without its fraction of a second (Logo's times have none).
pub fn whole_seconds(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// Which side wins when both changed a customer since the last run (a tenant setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictRule {
    /// Accounting's record is the legal one (the default: invoices are cut from it).
    #[default]
    LogoWins,
    CrmWins,
    /// The later change wins; equal times fall to Logo.
    NewestWins,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    Logo,
    Crm,
}

impl ConflictRule {
    /// Who wins a change on both sides; `None` when only one side changed since `last_run`
    /// (no conflict: that side's change stands).
    pub fn decide(
        &self,
        last_run: DateTime<Utc>,
        logo_changed: DateTime<Utc>,
        crm_changed: DateTime<Utc>,
    ) -> Option<Winner> {
        // Logo keeps whole seconds: a change in the second the last run started counts.
        if logo_changed < whole_seconds(last_run) || crm_changed <= last_run {
            return None;
        }
        Some(match self {
            ConflictRule::LogoWins => Winner::Logo,
            ConflictRule::CrmWins => Winner::Crm,
            ConflictRule::NewestWins if crm_changed > logo_changed => Winner::Crm,
            ConflictRule::NewestWins => Winner::Logo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arp(tax_id: Option<&str>, tckno: Option<&str>) -> LogoArp {
        LogoArp {
            internal_reference: Some(41),
            code: Some("120.01.001".into()),
            title: Some("DEMİR LOJİSTİK A.Ş.".into()),
            tax_id: tax_id.map(str::to_string),
            tckno: tckno.map(str::to_string),
            telephone1: Some("0212 555 11 22".into()),
            cell_phone: Some("5321112233".into()),
            e_mail: Some(" Muhasebe@DemirLojistik.com.tr ".into()),
            date_modified: Some("24.11.2026 09:30:00".into()),
            ..LogoArp::default()
        }
    }

    #[test]
    fn a_company_reads_with_its_vkn_phones_and_modification_time() {
        let customer = arp(Some("4540536920"), None).read().unwrap();
        assert_eq!(customer.party_type, PartyType::Company);
        assert_eq!(customer.tax_id.as_str(), "4540536920");
        assert_eq!(customer.phones.len(), 2);
        assert_eq!(
            customer.email.as_deref(),
            Some("muhasebe@demirlojistik.com.tr")
        );
        assert_eq!(
            customer.modified_at.unwrap().to_rfc3339(),
            "2026-11-24T06:30:00+00:00",
            "Logo's time is Istanbul's"
        );
        let person = arp(None, Some("10000000146")).read().unwrap();
        assert_eq!(person.party_type, PartyType::Person);
    }

    #[test]
    fn a_missing_or_invalid_tax_number_names_the_record_and_field() {
        let errors = arp(None, None).read().unwrap_err();
        assert_eq!(errors[0].field, "Arps[120.01.001].TAX_ID");
        let errors = arp(Some("4540536921"), None).read().unwrap_err();
        assert_eq!(errors[0].field, "Arps[120.01.001].TAX_ID");
        let errors = arp(None, Some("12345678901")).read().unwrap_err();
        assert_eq!(errors[0].field, "Arps[120.01.001].TCKNO");
        let nameless = LogoArp {
            code: None,
            title: None,
            ..arp(Some("4540536920"), None)
        };
        let fields: Vec<_> = nameless
            .read()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["Arps[ref 41].CODE", "Arps[ref 41].TITLE"]);
    }

    #[test]
    fn a_crm_customer_goes_to_tax_id_or_tckno_by_its_number() {
        let vkn = TaxId::parse("4540536920").unwrap();
        let mobile = PhoneNumber::parse("+90 532 111 22 33").unwrap();
        let body = new_arp(
            &CrmCustomer {
                title: "Demir Lojistik A.Ş.",
                tax_id: &vkn,
                phone: Some(&mobile),
                email: Some("muhasebe@demirlojistik.com.tr"),
                address: None,
                city: Some("İSTANBUL"),
            },
            "CRM.000042",
        );
        assert_eq!(body["TAX_ID"], "4540536920");
        assert!(body.get("TCKNO").is_none());
        assert_eq!(body["CELL_PHONE"], "05321112233");
        assert_eq!(body["CODE"], "CRM.000042");
        let tckn = TaxId::parse("10000000146").unwrap();
        let body = new_arp(
            &CrmCustomer {
                title: "Ayşe Yılmaz",
                tax_id: &tckn,
                phone: None,
                email: None,
                address: None,
                city: None,
            },
            "CRM.000043",
        );
        assert_eq!(
            (body["TCKNO"].as_str(), body.get("TAX_ID")),
            (Some("10000000146"), None)
        );
    }

    #[test]
    fn a_tenants_mapping_reads_and_writes_other_fields() {
        let record: LogoArp = serde_json::from_str(
            r#"{"CODE": "120.01.009", "TITLE": "Ege Gıda A.Ş.", "TAX_ID": "4540536920",
                "CELL_PHONE": "", "TELEPHONE2": "0232 444 55 66", "E_MAIL2": "Fatura@EgeGida.com.tr"}"#,
        )
        .unwrap();
        let fields = LogoFields {
            phones: vec!["TELEPHONE2".into()],
            email: "E_MAIL2".into(),
            ..LogoFields::default()
        };
        let customer = record.read_with(&fields).unwrap();
        assert_eq!(customer.phones[0].as_str(), "+902324445566");
        assert_eq!(customer.email.as_deref(), Some("fatura@egegida.com.tr"));
        assert!(
            record.read().unwrap().phones.is_empty(),
            "the defaults read other fields"
        );
        let tax = TaxId::parse("4540536920").unwrap();
        let phone = PhoneNumber::parse("0232 444 55 66").unwrap();
        let body = new_arp_with(
            &CrmCustomer {
                title: "Ege Gıda A.Ş.",
                tax_id: &tax,
                phone: Some(&phone),
                email: Some("fatura@egegida.com.tr"),
                address: None,
                city: None,
            },
            "CRM.X",
            &fields,
        );
        assert_eq!(
            (body["TELEPHONE2"].as_str(), body["E_MAIL2"].as_str()),
            (Some("02324445566"), Some("fatura@egegida.com.tr"))
        );
    }

    #[test]
    fn a_conflict_is_decided_by_the_tenants_rule_only_when_both_sides_changed() {
        let t = |m: i64| DateTime::<Utc>::from_timestamp(1_764_000_000 + m * 60, 0).unwrap();
        let (last_run, logo, crm) = (t(0), t(5), t(9));
        assert_eq!(
            ConflictRule::LogoWins.decide(last_run, logo, crm),
            Some(Winner::Logo)
        );
        assert_eq!(
            ConflictRule::CrmWins.decide(last_run, logo, crm),
            Some(Winner::Crm)
        );
        assert_eq!(
            ConflictRule::NewestWins.decide(last_run, logo, crm),
            Some(Winner::Crm)
        );
        assert_eq!(
            ConflictRule::NewestWins.decide(last_run, crm, logo),
            Some(Winner::Logo)
        );
        assert_eq!(
            ConflictRule::LogoWins.decide(last_run, t(-1), crm),
            None,
            "only the CRM changed"
        );
    }
}
