//! Logo sales invoices onto customer cards, and the reconciliation of both sides' totals.
//!
//! Read from the response text (never through a float): amounts are decimals to the kuruş, and
//! an invoice whose net and VAT do not add up to its gross is refused with the field named.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// A `salesInvoices` record (contracts.md §5.5), amounts kept as their text until read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct LogoInvoiceWire {
    #[serde(default)]
    pub internal_reference: Option<i64>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub doc_number: Option<String>,
    #[serde(default)]
    pub date: Option<String>,
    #[serde(default)]
    pub arp_code: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub total_net: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub total_vat: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub total_gross: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub tc_xrate: Option<String>,
    #[serde(default)]
    pub curr_invoice: Option<i64>,
    #[serde(default)]
    pub cancelled: Option<i64>,
    /// The lines, with `expandLevel=full`.
    #[serde(default)]
    pub transactions: Option<WireLines>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WireLines {
    #[serde(default)]
    pub items: Vec<WireLine>,
}

/// A `TRANSACTIONS` line: `TYPE` 0 is an item, 2 a discount, 4 a service.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct WireLine {
    #[serde(default, rename = "TYPE")]
    pub kind: Option<i64>,
    #[serde(default)]
    pub master_code: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub quantity: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub price: Option<String>,
    #[serde(default, deserialize_with = "crate::money::exact::text")]
    pub vat_rate: Option<String>,
    #[serde(default)]
    pub unit_code: Option<String>,
}

/// An invoice line on the card: what was sold, how many, at what price and VAT rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub kind: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub quantity: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub price: Decimal,
    pub vat_rate: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoInvoice {
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_number: Option<String>,
    pub date: NaiveDate,
    pub arp_code: String,
    /// Logo's currency code of the invoice (0 or 160: TRY).
    pub currency: i64,
    pub exchange_rate: Decimal,
    pub net: Decimal,
    pub vat: Decimal,
    pub gross: Decimal,
    pub cancelled: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<InvoiceLine>,
}

fn logo_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%d.%m.%Y")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%d.%m.%Y %H:%M:%S",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|t| t.date())
        })
}

/// `1250.50` or `1.250,50`, rounded to the kuruş.
fn decimal(text: &str) -> Option<Decimal> {
    crate::money::Money::parse_amount(text).map(|d| d.round_dp(2))
}

impl LogoInvoiceWire {
    /// The invoice, or every problem with it, each naming the record and Logo's field.
    pub fn read(&self) -> Result<LogoInvoice, Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = self
            .number
            .clone()
            .unwrap_or_else(|| format!("ref {}", self.internal_reference.unwrap_or_default()));
        let at = |field: &str| format!("salesInvoices[{id}].{field}");
        let mut required = |field: &str, value: &Option<String>| {
            let value = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
            if value.is_none() {
                errors.push(FieldError::missing(at(field)));
            }
            value.map(str::to_string)
        };
        let number = required("NUMBER", &self.number);
        let arp_code = required("ARP_CODE", &self.arp_code);
        let date_text = required("DATE", &self.date);
        let mut money = |field: &str, value: &Option<String>, default: Option<Decimal>| match value
            .as_deref()
        {
            None => {
                if default.is_none() {
                    errors.push(FieldError::missing(at(field)));
                }
                default
            }
            Some(text) => match decimal(text) {
                Some(d) => Some(d),
                None => {
                    errors.push(FieldError::new(
                        at(field),
                        "invalid_amount",
                        format!("{text:?} is not an amount"),
                    ));
                    None
                }
            },
        };
        let net = money("TOTAL_NET", &self.total_net, None);
        let vat = money("TOTAL_VAT", &self.total_vat, Some(Decimal::ZERO));
        let gross = money("TOTAL_GROSS", &self.total_gross, None);
        let rate = money("TC_XRATE", &self.tc_xrate, Some(Decimal::ONE));
        let date = date_text.as_deref().and_then(|d| {
            let parsed = logo_date(d);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    at("DATE"),
                    "invalid_date",
                    format!("{d:?} is not a date"),
                ));
            }
            parsed
        });
        let mut lines = Vec::new();
        let wire_lines = self.transactions.as_ref().map(|t| t.items.as_slice());
        for (n, line) in wire_lines.unwrap_or_default().iter().enumerate() {
            let mut number = |field: &str, value: &Option<String>| match value.as_deref() {
                None => Some(Decimal::ZERO),
                Some(text) => {
                    let parsed = crate::logo::stock::quantity(text);
                    if parsed.is_none() {
                        errors.push(FieldError::new(
                            at(&format!("TRANSACTIONS[{n}].{field}")),
                            "invalid_number",
                            format!("{text:?} is not a number"),
                        ));
                    }
                    parsed
                }
            };
            let quantity = number("QUANTITY", &line.quantity);
            let price = number("PRICE", &line.price);
            let vat_rate = number("VAT_RATE", &line.vat_rate);
            if let (Some(quantity), Some(price), Some(vat_rate)) = (quantity, price, vat_rate) {
                lines.push(InvoiceLine {
                    kind: line.kind.unwrap_or(0),
                    code: line.master_code.clone().filter(|c| !c.trim().is_empty()),
                    description: line.description.clone().filter(|d| !d.trim().is_empty()),
                    quantity: quantity.normalize(),
                    unit: line.unit_code.clone().filter(|u| !u.trim().is_empty()),
                    price,
                    vat_rate: vat_rate.normalize(),
                });
            }
        }
        if let (Some(net), Some(vat), Some(gross)) = (net, vat, gross) {
            if net + vat != gross {
                errors.push(FieldError::new(
                    at("TOTAL_GROSS"),
                    "totals_disagree",
                    format!(
                        "net {net} + VAT {vat} is {}, not the gross {gross}",
                        net + vat
                    ),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match (number, arp_code, date, net, vat, gross, rate) {
            (
                Some(number),
                Some(arp_code),
                Some(date),
                Some(net),
                Some(vat),
                Some(gross),
                Some(rate),
            ) => Ok(LogoInvoice {
                number,
                doc_number: self.doc_number.clone().filter(|d| !d.trim().is_empty()),
                date,
                arp_code,
                currency: self.curr_invoice.unwrap_or(0),
                exchange_rate: rate,
                net,
                vat,
                gross,
                cancelled: self.cancelled.unwrap_or(0) != 0,
                lines,
            }),
            _ => Err(vec![FieldError::new(
                at("*"),
                "invalid_record",
                "incomplete invoice",
            )]),
        }
    }
}

/// What the reconciliation compares of an invoice (a projection of the stored one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceSummary {
    pub number: String,
    pub date: NaiveDate,
    pub gross: Decimal,
    pub cancelled: bool,
}

/// One side's invoices over a period, for the reconciliation report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    pub count: u64,
    /// Gross, cancelled invoices left out.
    pub gross: Decimal,
}

impl InvoiceTotals {
    pub fn add(&mut self, invoice: &LogoInvoice) {
        if !invoice.cancelled {
            self.count += 1;
            self.gross += invoice.gross;
        }
    }

    /// Whether both sides agree to the kuruş.
    pub fn matches(&self, other: &InvoiceTotals) -> bool {
        self.count == other.count && self.gross.round_dp(2) == other.gross.round_dp(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<LogoInvoice, Vec<FieldError>> {
        serde_json::from_str::<LogoInvoiceWire>(json)
            .unwrap()
            .read()
    }

    #[test]
    fn an_invoice_reads_exactly_and_totals_to_the_kurus() {
        let invoice = read(
            r#"{"NUMBER": "SF-2026-000123", "DOC_NUMBER": "M726568", "DATE": "24.11.2026", "ARP_CODE": "120.01.001",
                "TOTAL_NET": 10250.40, "TOTAL_VAT": 2050.08, "TOTAL_GROSS": 12300.48, "TC_XRATE": 1, "CANCELLED": 0}"#,
        )
        .unwrap();
        assert_eq!(invoice.gross.to_string(), "12300.48");
        let with_lines = read(
            r#"{"NUMBER": "SF-9", "DATE": "24.11.2026", "ARP_CODE": "C", "TOTAL_NET": 200, "TOTAL_VAT": 40, "TOTAL_GROSS": 240,
                "TRANSACTIONS": {"items": [{"TYPE": 0, "MASTER_CODE": "YAĞ-5W30", "QUANTITY": 2, "PRICE": 100.00, "VAT_RATE": 20, "UNIT_CODE": "ADET"}]}}"#,
        )
        .unwrap();
        assert_eq!(with_lines.lines[0].quantity, Decimal::from(2));
        assert_eq!(with_lines.lines[0].price.to_string(), "100.00");
        assert_eq!(invoice.date.to_string(), "2026-11-24");
        let turkish = read(r#"{"NUMBER": "X", "DATE": "2026-11-24 10:00:00", "ARP_CODE": "C", "TOTAL_NET": "1.250,50", "TOTAL_VAT": "250,10", "TOTAL_GROSS": "1.500,60"}"#).unwrap();
        assert_eq!(turkish.net.to_string(), "1250.50");
        let mut totals = InvoiceTotals::default();
        totals.add(&invoice);
        totals.add(&turkish);
        totals.add(&LogoInvoice {
            cancelled: true,
            ..invoice.clone()
        });
        assert_eq!(
            (totals.count, totals.gross.to_string().as_str()),
            (2, "13801.08")
        );
        let crm = InvoiceTotals {
            count: 2,
            gross: "13801.080".parse().unwrap(),
        };
        assert!(totals.matches(&crm));
    }

    #[test]
    fn bad_amounts_and_missing_fields_name_the_record_and_field() {
        let errors = read(
            r#"{"NUMBER": "SF-1", "DATE": "24.11.2026", "TOTAL_NET": "on bin", "TOTAL_GROSS": 10}"#,
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "salesInvoices[SF-1].ARP_CODE",
                "salesInvoices[SF-1].TOTAL_NET"
            ]
        );
        let errors = read(r#"{"NUMBER": "SF-2", "DATE": "24.11.2026", "ARP_CODE": "C", "TOTAL_NET": 100, "TOTAL_VAT": 20, "TOTAL_GROSS": 120.01}"#).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("salesInvoices[SF-2].TOTAL_GROSS", "totals_disagree")
        );
    }
}
