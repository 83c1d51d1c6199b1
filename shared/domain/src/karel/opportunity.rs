//! The CRM's opportunity as queued for Karel, and its `PpOpportunities` body (seed 003).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::money::Money;
use crate::tenant::{KarelFieldKind, KarelSettings};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    Daily,
    Monthly,
    Yearly,
}

impl PeriodKind {
    /// Karel's `Period` byte (0 none, 1 daily, 2 monthly, 3 yearly).
    pub fn code(&self) -> u8 {
        match self {
            PeriodKind::Daily => 1,
            PeriodKind::Monthly => 2,
            PeriodKind::Yearly => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub kind: PeriodKind,
    pub duration: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<NaiveDate>,
}

/// Why an opportunity goes to Karel (for the log and the sample events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A lead asked for a service (web form, Lead Ads).
    LeadRequestedService,
    /// A policy was bought through InsurUp.
    PolicyPurchased,
    /// The CRM changed the opportunity (stage, price...) or removed it.
    CrmChange,
}

/// One state of a CRM opportunity, queued for Karel. `version` orders the changes of one
/// opportunity: an older one arriving late changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpportunityChange {
    pub opportunity_id: String,
    pub version: i64,
    pub trigger: Trigger,
    /// The opportunity was removed in the CRM: delete it in Karel.
    #[serde(default)]
    pub deleted: bool,
    pub card_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Karel's `OpportunityState` (a tenant-defined byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_end_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// CRM field name → value (dates `YYYY-MM-DD`; dropdowns the CRM's option name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
}

/// The tag that names our opportunity in Karel: how an operator finds one whose create got no
/// answer (Karel has no idempotency key and no search by it).
pub fn crm_tag(opportunity_id: &str) -> String {
    format!("onecrm:{opportunity_id}")
}

fn karel_date(date: NaiveDate) -> String {
    format!("{date}T00:00:00")
}

/// A decimal as a JSON number (Karel reads `decimal?`); an amount a double cannot carry
/// exactly (more than 15 significant digits) is refused rather than rounded.
fn amount(value: Decimal) -> Result<Value, String> {
    let float = value
        .to_f64()
        .ok_or_else(|| format!("{value} is not an amount"))?;
    match Decimal::try_from(float) {
        Ok(back) if back == value => Ok(json!(float)),
        _ => Err(format!(
            "{value} has more digits than Karel's JSON number carries exactly"
        )),
    }
}

/// The create/update body. `value_ids` are the `CustomFieldValueId`s Karel gave each custom
/// field (by field id): sent back on update so Karel updates the values instead of adding new ones.
pub fn karel_body(
    change: &OpportunityChange,
    customer_card_id: i64,
    representative_card_id: i64,
    settings: &KarelSettings,
    value_ids: &BTreeMap<i64, i64>,
) -> Result<Value, String> {
    let mut body = json!({
        "Description": change.description,
        "RefCustomerCardId": customer_card_id,
        "RefRepresentativeCardId": representative_card_id,
        "RefCurrencyId": settings.currency_id,
    });
    if let Some(price) = &change.price {
        if price.currency != "TRY" {
            return Err(format!(
                "price in {}: only TRY is mapped to a Karel currency",
                price.currency
            ));
        }
        body["OpportunityPrice"] = amount(price.amount)?;
    }
    if let Some(state) = change.state {
        body["OpportunityState"] = json!(state);
    }
    if let Some(stage) = &change.stage {
        let id = settings.stages.get(stage).ok_or_else(|| {
            format!("stage {stage:?} has no Karel pipeline stage (map-karel-stage)")
        })?;
        body["RefPipelineStageId"] = json!(id);
    }
    if let Some(date) = change.start_date {
        body["OpportunityStartDate"] = json!(karel_date(date));
    }
    if let Some(date) = change.estimated_end_date {
        body["EstimatedEndDate"] = json!(karel_date(date));
    }
    match &change.period {
        Some(period) => {
            body["Period"] = json!(period.kind.code());
            body["Duration"] = json!(period.duration);
            if let Some(start) = period.start {
                body["PeriodStartDate"] = json!(karel_date(start));
            }
        }
        None => body["Period"] = json!(0),
    }
    let mut tags = change.tags.clone();
    tags.push(crm_tag(&change.opportunity_id));
    body["Tags"] = json!(tags.join(","));
    let mut fields = Vec::new();
    for (name, value) in &change.custom_fields {
        let field = settings
            .custom_fields
            .get(name)
            .ok_or_else(|| format!("custom field {name:?} has no Karel field (map-karel-field)"))?;
        let mut entry = json!({ "CustomFieldId": field.id });
        match field.kind {
            KarelFieldKind::Text => entry["CustomFieldTextValue"] = json!(value),
            KarelFieldKind::Date => {
                let date: NaiveDate = value
                    .parse()
                    .map_err(|_| format!("custom field {name:?}: {value:?} is not a date"))?;
                entry["CustomFieldDateValue"] = json!(karel_date(date));
            }
            KarelFieldKind::Option => {
                let option = field.options.get(value).ok_or_else(|| {
                    format!("custom field {name:?}: option {value:?} has no Karel option id")
                })?;
                entry["CustomFieldOptionId"] = json!(option);
            }
        }
        if let Some(value_id) = value_ids.get(&field.id) {
            entry["CustomFieldValueId"] = json!(value_id);
        }
        fields.push(entry);
    }
    body["CustomFields"] = Value::Array(fields);
    Ok(body)
}

/// The `CustomFieldValueId` of each mapped field, from what Karel's GET lists (by label).
pub fn value_ids_by_field(
    settings: &KarelSettings,
    listed: &[(i64, String)],
) -> BTreeMap<i64, i64> {
    settings
        .custom_fields
        .values()
        .filter_map(|field| {
            listed
                .iter()
                .find(|(_, label)| {
                    crate::text::fold_tr(label) == crate::text::fold_tr(&field.label)
                })
                .map(|(value_id, _)| (field.id, *value_id))
        })
        .collect()
}
