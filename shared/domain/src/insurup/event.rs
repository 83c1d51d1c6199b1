//! InsurUp webhook payloads (contracts.md §3.5): one body per delivery, discriminated by its
//! `$event`. Money is read from the JSON text (never through f64); enums the docs call partial
//! (branches, channels, payment options) are kept as the strings InsurUp sent.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::ingress::json::strict;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InsuranceCompany {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyCreated {
    pub policy_id: String,
    #[serde(default)]
    pub proposal_id: Option<String>,
    #[serde(default)]
    pub installment_number: Option<i64>,
    #[serde(default)]
    pub payment_type: Option<String>,
    pub insurance_company: InsuranceCompany,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    #[serde(default)]
    pub renewal_number: i64,
    #[serde(default)]
    pub product_branch: Option<String>,
    pub insured_customer_id: String,
    #[serde(default)]
    pub insurer_customer_id: Option<String>,
    #[serde(default)]
    pub insured_identity_number: Option<String>,
    #[serde(default)]
    pub insurer_identity_number: Option<String>,
    #[serde(default)]
    pub insured_customer_email: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::optional")]
    pub net_premium: Option<Decimal>,
    #[serde(default, deserialize_with = "crate::money::exact::optional")]
    pub gross_premium: Option<Decimal>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub from_policy_transfer: bool,
    pub insurance_company_policy_no: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyUpdated {
    pub policy_id: String,
    #[serde(default)]
    pub installment_number: Option<i64>,
    #[serde(default)]
    pub payment_type: Option<String>,
    pub endorsement_number: i64,
    #[serde(default)]
    pub is_cancel: bool,
    #[serde(deserialize_with = "crate::money::exact::decimal")]
    pub net_premium: Decimal,
    #[serde(deserialize_with = "crate::money::exact::decimal")]
    pub gross_premium: Decimal,
    #[serde(default)]
    pub insured_identity_number: Option<String>,
    #[serde(default)]
    pub insurer_identity_number: Option<String>,
    pub insurance_company_policy_no: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhoneNumberModel {
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub country_code: Option<i64>,
    #[serde(default)]
    pub area_code: Option<String>,
    #[serde(default)]
    pub number_without_area_code: Option<String>,
}

impl PhoneNumberModel {
    /// The number as one string for the phone parser (`+90` + area + number, or `number`).
    pub fn text(&self) -> Option<String> {
        match (&self.area_code, &self.number_without_area_code) {
            (Some(area), Some(rest)) => {
                Some(format!("+{}{area}{rest}", self.country_code.unwrap_or(90)))
            }
            _ => self.number.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueText {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// `CustomerModel`, polymorphic on `$type` (individual, foreign, company).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerModel {
    #[serde(rename = "$type")]
    pub kind: String,
    #[serde(default)]
    pub identity_number: Option<String>,
    #[serde(default)]
    pub tax_number: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub phone_number: Option<PhoneNumberModel>,
    #[serde(default)]
    pub email: Option<ValueText>,
    #[serde(default)]
    pub city: Option<ValueText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Premium {
    pub installment_number: i64,
    #[serde(deserialize_with = "crate::money::exact::decimal")]
    pub net_premium: Decimal,
    #[serde(deserialize_with = "crate::money::exact::decimal")]
    pub gross_premium: Decimal,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PremiumReceived {
    pub proposal_id: String,
    #[serde(default)]
    pub product_id: Option<i64>,
    #[serde(default)]
    pub proposal_product_id: Option<String>,
    #[serde(default)]
    pub product_branch: Option<String>,
    #[serde(default)]
    pub premiums: Vec<Premium>,
    pub insured_customer: CustomerModel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PremiumPurchased {
    pub proposal_id: String,
    pub policy_id: String,
    #[serde(default)]
    pub product_id: Option<i64>,
    #[serde(default)]
    pub installment_number: Option<i64>,
    #[serde(default)]
    pub payment_type: Option<String>,
    #[serde(default)]
    pub policy_start_date: Option<NaiveDate>,
    #[serde(default)]
    pub policy_end_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PremiumPurchaseFailed {
    pub proposal_id: String,
    #[serde(default)]
    pub product_id: Option<i64>,
    #[serde(default)]
    pub installment_number: Option<i64>,
    #[serde(default)]
    pub payment_type: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerChanged {
    pub customer_id: String,
    #[serde(default)]
    pub customer_type: Option<String>,
    #[serde(default)]
    pub identity_number: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub company_title: Option<String>,
    #[serde(default)]
    pub tax_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    #[serde(default)]
    pub province: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentChanged {
    pub customer_id: String,
    #[serde(default)]
    pub customer_type: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    /// `givenAt` or `revokedAt`.
    #[serde(alias = "givenAt", alias = "revokedAt")]
    pub at: DateTime<Utc>,
}

/// Vehicle, property and case events: shown on the customer's timeline as they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerThing {
    pub customer_id: String,
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

/// One InsurUp event. Read from the body text itself (never through a JSON value), so premiums
/// keep their exact decimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsurUpEvent {
    PolicyCreated(PolicyCreated),
    PolicyUpdated(PolicyUpdated),
    PremiumReceived(PremiumReceived),
    PremiumPurchased(PremiumPurchased),
    PremiumPurchaseFailed(PremiumPurchaseFailed),
    CustomerCreated(CustomerChanged),
    CustomerUpdated(CustomerChanged),
    KvkkConsentGiven(ConsentChanged),
    KvkkConsentRevoked(ConsentChanged),
    EtkConsentGiven(ConsentChanged),
    EtkConsentRevoked(ConsentChanged),
    VehicleCreated(CustomerThing),
    VehicleUpdated(CustomerThing),
    PropertyCreated(CustomerThing),
    PropertyUpdated(CustomerThing),
    CaseCreated(CustomerThing),
    CaseStateChanged(CustomerThing),
}

/// The events InsurUp documents; `proposal_premium.purchasing` is synchronous and internal to
/// InsurUp (never sent to external webhooks): answered as not supported.
pub const KNOWN_EVENTS: &[&str] = &[
    "policy.created",
    "policy.updated",
    "proposal_premium.received",
    "proposal_premium.purchased",
    "proposal_premium.purchase_failed",
    "customer.created",
    "customer.updated",
    "customer.kvkk_consent_given",
    "customer.kvkk_consent_revoked",
    "customer.etk_consent_given",
    "customer.etk_consent_revoked",
    "vehicle.created",
    "vehicle.updated",
    "property.created",
    "property.updated",
    "case.created",
    "case.state_changed",
];
pub const SYNC_ONLY_EVENT: &str = "proposal_premium.purchasing";

impl InsurUpEvent {
    /// The strict read of a body whose `$event` is known, naming the field of any problem.
    pub fn parse(raw: &str) -> Result<InsurUpEvent, FieldError> {
        #[derive(Deserialize)]
        struct Tag {
            #[serde(rename = "$event")]
            event: String,
        }
        let tag: Tag = strict(raw, "")?;
        match tag.event.as_str() {
            "policy.created" => strict(raw, "").map(InsurUpEvent::PolicyCreated),
            "policy.updated" => strict(raw, "").map(InsurUpEvent::PolicyUpdated),
            "proposal_premium.received" => strict(raw, "").map(InsurUpEvent::PremiumReceived),
            "proposal_premium.purchased" => strict(raw, "").map(InsurUpEvent::PremiumPurchased),
            "proposal_premium.purchase_failed" => {
                strict(raw, "").map(InsurUpEvent::PremiumPurchaseFailed)
            }
            "customer.created" => strict(raw, "").map(InsurUpEvent::CustomerCreated),
            "customer.updated" => strict(raw, "").map(InsurUpEvent::CustomerUpdated),
            "customer.kvkk_consent_given" => strict(raw, "").map(InsurUpEvent::KvkkConsentGiven),
            "customer.kvkk_consent_revoked" => {
                strict(raw, "").map(InsurUpEvent::KvkkConsentRevoked)
            }
            "customer.etk_consent_given" => strict(raw, "").map(InsurUpEvent::EtkConsentGiven),
            "customer.etk_consent_revoked" => strict(raw, "").map(InsurUpEvent::EtkConsentRevoked),
            "vehicle.created" => strict(raw, "").map(InsurUpEvent::VehicleCreated),
            "vehicle.updated" => strict(raw, "").map(InsurUpEvent::VehicleUpdated),
            "property.created" => strict(raw, "").map(InsurUpEvent::PropertyCreated),
            "property.updated" => strict(raw, "").map(InsurUpEvent::PropertyUpdated),
            "case.created" => strict(raw, "").map(InsurUpEvent::CaseCreated),
            "case.state_changed" => strict(raw, "").map(InsurUpEvent::CaseStateChanged),
            other => Err(FieldError::new(
                "$event",
                "unknown_event",
                format!("{other:?} is not an InsurUp event we know"),
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            InsurUpEvent::PolicyCreated(_) => "policy.created",
            InsurUpEvent::PolicyUpdated(_) => "policy.updated",
            InsurUpEvent::PremiumReceived(_) => "proposal_premium.received",
            InsurUpEvent::PremiumPurchased(_) => "proposal_premium.purchased",
            InsurUpEvent::PremiumPurchaseFailed(_) => "proposal_premium.purchase_failed",
            InsurUpEvent::CustomerCreated(_) => "customer.created",
            InsurUpEvent::CustomerUpdated(_) => "customer.updated",
            InsurUpEvent::KvkkConsentGiven(_) => "customer.kvkk_consent_given",
            InsurUpEvent::KvkkConsentRevoked(_) => "customer.kvkk_consent_revoked",
            InsurUpEvent::EtkConsentGiven(_) => "customer.etk_consent_given",
            InsurUpEvent::EtkConsentRevoked(_) => "customer.etk_consent_revoked",
            InsurUpEvent::VehicleCreated(_) => "vehicle.created",
            InsurUpEvent::VehicleUpdated(_) => "vehicle.updated",
            InsurUpEvent::PropertyCreated(_) => "property.created",
            InsurUpEvent::PropertyUpdated(_) => "property.updated",
            InsurUpEvent::CaseCreated(_) => "case.created",
            InsurUpEvent::CaseStateChanged(_) => "case.state_changed",
        }
    }
}
