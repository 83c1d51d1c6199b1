//! Logo material cards (`items`) onto CRM product cards, with the stock on hand from Logo's
//! stock totals (contracts.md §5.6: the REST service has no stock resource; a read query does).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// An `items` record (the fields the sync uses), numbers kept as their text until read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct LogoItemWire {
    #[serde(default)]
    pub internal_reference: Option<i64>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub unitset_code: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub vat: Option<String>,
}

/// One row of the on-hand query: the item's reference and its quantity over all warehouses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct OnHandRow {
    pub stockref: i64,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub onhand: Option<String>,
}

/// A CRM product card as Logo has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub code: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub vat_rate: Decimal,
    pub on_hand: Decimal,
    pub logo_ref: i64,
}

/// A quantity as Logo writes it (`12.5`, `"12,5"`, `1E+2`), exact.
pub fn quantity(text: &str) -> Option<Decimal> {
    crate::money::Money::parse_amount(text).or_else(|| Decimal::from_scientific(text).ok())
}

impl LogoItemWire {
    /// The product with `on_hand` from the stock query (none: 0), or every problem, each
    /// naming the record and Logo's field.
    pub fn read(&self, on_hand: Option<&str>) -> Result<Product, Vec<FieldError>> {
        let mut errors = Vec::new();
        let code = self
            .code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let id = code
            .map(str::to_string)
            .unwrap_or_else(|| format!("ref {}", self.internal_reference.unwrap_or_default()));
        let at = |field: &str| format!("items[{id}].{field}");
        if code.is_none() {
            errors.push(FieldError::missing(at("CODE")));
        }
        let Some(logo_ref) = self.internal_reference else {
            errors.push(FieldError::missing(at("INTERNAL_REFERENCE")));
            return Err(errors);
        };
        let vat_rate = match self.vat.as_deref() {
            None => Decimal::ZERO,
            Some(text) => quantity(text).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    at("VAT"),
                    "invalid_number",
                    format!("{text:?} is not a VAT rate"),
                ));
                Decimal::ZERO
            }),
        };
        let on_hand = match on_hand {
            None => Decimal::ZERO,
            Some(text) => quantity(text).unwrap_or_else(|| {
                errors.push(FieldError::new(
                    at("ONHAND"),
                    "invalid_number",
                    format!("{text:?} is not a quantity"),
                ));
                Decimal::ZERO
            }),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        let code = code.unwrap_or_default().to_string();
        Ok(Product {
            name: self
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or(&code)
                .to_string(),
            code,
            unit: self.unitset_code.clone().filter(|u| !u.trim().is_empty()),
            vat_rate: vat_rate.normalize(),
            on_hand: on_hand.normalize(),
            logo_ref,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> LogoItemWire {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_item_reads_with_its_vat_and_exact_stock() {
        let wire = item(
            r#"{"INTERNAL_REFERENCE": 7, "CODE": "YAĞ-5W30", "NAME": "Motor Yağı 5W-30 4L", "UNITSET_CODE": "ADET", "VAT": 20}"#,
        );
        let product = wire.read(Some("1250.125")).unwrap();
        assert_eq!(product.vat_rate, Decimal::from(20));
        assert_eq!(product.on_hand.to_string(), "1250.125");
        assert_eq!(product.unit.as_deref(), Some("ADET"));
        assert_eq!(wire.read(None).unwrap().on_hand, Decimal::ZERO);
    }

    #[test]
    fn a_bad_quantity_names_the_item_and_field() {
        let wire = item(r#"{"INTERNAL_REFERENCE": 8, "CODE": "X-1", "VAT": "yirmi"}"#);
        let errors = wire.read(Some("bol")).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["items[X-1].VAT", "items[X-1].ONHAND"]);
    }
}
