//! Money is a decimal amount with its currency; never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// Serialized as a string ("1250.50") so no JSON reader turns it into a float.
    pub amount: Decimal,
    /// ISO 4217 code, upper case ("TRY").
    pub currency: String,
}

impl Money {
    pub fn new(amount: Decimal, currency: &str) -> Self {
        Self {
            amount,
            currency: currency.trim().to_ascii_uppercase(),
        }
    }

    /// Parses a decimal written either way Turkish systems write it: "1250.50" or "1.250,50".
    pub fn parse_amount(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let normalized = if t.contains(',') {
            t.replace('.', "").replace(',', ".")
        } else {
            t.to_string()
        };
        normalized.parse().ok()
    }
}

/// Reading partner JSON amounts exactly: a JSON number or numeric string is taken as its text
/// (serde on the body text with `RawValue`), so no amount passes through a float. Use with
/// `#[serde(deserialize_with = "...")]` on types read from the text itself.
pub mod exact {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer};
    use serde_json::value::RawValue;

    /// The amount's text as written (`12300.48`, `"1.250,50"`); `None` for null or absent.
    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let raw: Option<Box<RawValue>> = Deserialize::deserialize(d)?;
        Ok(raw
            .map(|r| {
                let text = r.get().trim();
                text.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .unwrap_or(text)
                    .to_string()
            })
            .filter(|t| t != "null"))
    }

    fn parse<E: serde::de::Error>(text: &str) -> Result<Decimal, E> {
        super::Money::parse_amount(text)
            .or_else(|| Decimal::from_scientific(text).ok())
            .ok_or_else(|| E::custom(format!("expected a decimal amount, found {text}")))
    }

    pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        match text(d)? {
            Some(t) => parse(&t),
            None => Err(serde::de::Error::custom(
                "expected a decimal amount, found null",
            )),
        }
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        text(d)?.map(|t| parse(&t)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn parses_both_decimal_conventions_exactly() {
        assert_eq!(
            Money::parse_amount("1.250,50"),
            Decimal::from_str("1250.50").ok()
        );
        assert_eq!(
            Money::parse_amount("1250.50"),
            Decimal::from_str("1250.50").ok()
        );
        assert_eq!(
            Money::parse_amount("0.1").map(|d| d + Decimal::from_str("0.2").unwrap()),
            Decimal::from_str("0.3").ok()
        );
        assert_eq!(Money::parse_amount("abc"), None);
    }

    #[test]
    fn serializes_amount_as_string() {
        let m = Money::new(Decimal::from_str("99.90").unwrap(), "try");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"amount":"99.90","currency":"TRY"}"#
        );
    }
}
