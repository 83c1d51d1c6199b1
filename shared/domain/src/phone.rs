//! Phone numbers in E.164, with Turkish rules (field-research §5.1): `0533 123 45 67`,
//! `533 123 4567`, `90533…`, `+90 533…` and `0090 533…` are one number. PBX extensions,
//! hidden caller ids and short service numbers (`444 xx xx`, `112`) are refused, so they can
//! never be matched to a customer card.

use std::fmt;
use std::str::FromStr;

use crate::text::to_lower_tr;

/// A phone number in E.164 form, e.g. `+905331234567`. Only constructible by parsing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

/// Stored as its E.164 string; reading one back re-validates it (as international digits: a
/// stored number never goes through the national-format guesses).
impl serde::Serialize for PhoneNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PhoneNumber::from_international_digits(&text).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone number is empty")]
    Empty,
    #[error("caller id is hidden")]
    Hidden,
    #[error("{digits} looks like an internal PBX extension, not a phone number")]
    Extension { digits: String },
    #[error("{digits} is a short service number (such as 444 xx xx or 112), not a personal phone")]
    ShortNumber { digits: String },
    #[error("unexpected character {ch:?} in phone number")]
    InvalidCharacter { ch: char },
    #[error("a phone number cannot have {digits} digits")]
    InvalidLength { digits: usize },
    #[error("not a valid Turkish number: {reason}")]
    InvalidTurkishNumber { reason: String },
}

impl PhoneError {
    pub fn code(&self) -> &'static str {
        match self {
            PhoneError::Empty => "empty",
            PhoneError::Hidden => "hidden_caller_id",
            PhoneError::Extension { .. } => "extension",
            PhoneError::ShortNumber { .. } => "short_number",
            PhoneError::InvalidCharacter { .. } => "invalid_character",
            PhoneError::InvalidLength { .. } => "invalid_length",
            PhoneError::InvalidTurkishNumber { .. } => "invalid_turkish_number",
        }
    }
}

/// What PBXs and carriers put in the caller id when the number is withheld.
const HIDDEN: &[&str] = &[
    "anonymous",
    "private",
    "unknown",
    "restricted",
    "hidden",
    "unavailable",
    "gizli",
    "gizli numara",
    "bilinmiyor",
    "numara yok",
];

/// Splits input into an optional international marker ('+' or a leading "00") and its digits,
/// accepting the separators people type.
fn digits_of(input: &str) -> Result<(bool, String), PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(PhoneError::Empty);
    }
    if HIDDEN.contains(&to_lower_tr(trimmed).as_str()) {
        return Err(PhoneError::Hidden);
    }
    let mut plus = false;
    let mut digits = String::with_capacity(trimmed.len());
    for (i, ch) in trimmed.chars().enumerate() {
        match ch {
            '0'..='9' => digits.push(ch),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
            other => return Err(PhoneError::InvalidCharacter { ch: other }),
        }
    }
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    if !plus {
        if let Some(rest) = digits.strip_prefix("00") {
            return Ok((true, rest.to_string()));
        }
    }
    Ok((plus, digits))
}

/// A Turkish national significant number (10 digits) must start with an area or service code:
/// 2-4 landlines, 5 mobiles, 8 (800/850) and 9 (900) non-geographic.
fn turkish(nsn: &str) -> Result<PhoneNumber, PhoneError> {
    match nsn.as_bytes().first() {
        Some(b'2'..=b'5' | b'8' | b'9') if nsn.len() == 10 => Ok(PhoneNumber(format!("+90{nsn}"))),
        Some(_) if nsn.len() == 10 => Err(PhoneError::InvalidTurkishNumber {
            reason: format!("no area code starts with {}", &nsn[..1]),
        }),
        _ => Err(PhoneError::InvalidLength { digits: nsn.len() }),
    }
}

fn international(digits: &str) -> Result<PhoneNumber, PhoneError> {
    if let Some(rest) = digits.strip_prefix("90") {
        // +90 444 xx xx: a service number, not a line that can be anyone's.
        if rest.len() == 7 && rest.starts_with("444") {
            return Err(PhoneError::ShortNumber {
                digits: digits.to_string(),
            });
        }
        // People write the trunk 0 after +90 ("+90 0533 …").
        let nsn = if rest.len() == 11 {
            rest.strip_prefix('0').unwrap_or(rest)
        } else {
            rest
        };
        return turkish(nsn);
    }
    match digits.len() {
        8..=15 if !digits.starts_with('0') => Ok(PhoneNumber(format!("+{digits}"))),
        8..=15 => Err(PhoneError::InvalidLength {
            digits: digits.len(),
        }),
        n => Err(PhoneError::InvalidLength { digits: n }),
    }
}

impl PhoneNumber {
    /// Parses what a person or a Turkish system typed; without '+' or "00", Turkey is assumed.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneError> {
        let (marked_international, digits) = digits_of(input)?;
        if marked_international {
            return international(&digits);
        }
        match digits.len() {
            // 2-5 digits: PBX extensions; 3-digit numbers starting with 1 are emergency and
            // service lines (112, 155, 182).
            3 if digits.starts_with('1') => Err(PhoneError::ShortNumber { digits }),
            2..=5 => Err(PhoneError::Extension { digits }),
            // 444 xx xx (7 digits, no area code) and other 6-7 digit service numbers.
            6 | 7 => Err(PhoneError::ShortNumber { digits }),
            // The same service numbers as PBXs prefix them: 0444 xx xx, 90 444 xx xx.
            8 if digits.starts_with("0444") => Err(PhoneError::ShortNumber { digits }),
            9 if digits.starts_with("90444") => Err(PhoneError::ShortNumber { digits }),
            10 => turkish(&digits),
            11 if digits.starts_with('0') => turkish(&digits[1..]),
            12 if digits.starts_with("90") => turkish(&digits[2..]),
            13 if digits.starts_with("900") => turkish(&digits[3..]),
            n => Err(PhoneError::InvalidLength { digits: n }),
        }
    }

    /// Parses digits that already carry a country code but no '+', as WhatsApp `wa_id` and
    /// `from` do (`905331234567`, `4915112345678`). A leading '+' is accepted too.
    pub fn from_international_digits(input: &str) -> Result<PhoneNumber, PhoneError> {
        let (_, digits) = digits_of(input)?;
        international(&digits)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Without the '+': what the WhatsApp API takes as `to`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    pub fn is_turkish(&self) -> bool {
        self.0.starts_with("+90")
    }

    pub fn is_turkish_mobile(&self) -> bool {
        self.0.starts_with("+905")
    }

    /// `0533 123 45 67` for Turkish numbers, E.164 otherwise.
    pub fn national_display(&self) -> String {
        match self.0.strip_prefix("+90") {
            Some(n) if n.len() == 10 => {
                format!("0{} {} {} {}", &n[..3], &n[3..6], &n[6..8], &n[8..])
            }
            _ => self.0.clone(),
        }
    }

    /// `+90 533 *** ** 67`: enough to recognise, not enough to call (KVKK).
    pub fn masked(&self) -> String {
        match self.0.strip_prefix("+90") {
            Some(n) if n.len() == 10 => format!("+90 {} *** ** {}", &n[..3], &n[8..]),
            _ => {
                let d = self.digits();
                format!(
                    "+{}{}{}",
                    &d[..3.min(d.len())],
                    "*".repeat(d.len().saturating_sub(5)),
                    &d[d.len().saturating_sub(2)..]
                )
            }
        }
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_turkish_form_is_one_number() {
        for input in [
            "05331234567",
            "0533 123 45 67",
            "533 123 4567",
            "5331234567",
            "905331234567",
            "+90 533 123 45 67",
            "0090 533 123 45 67",
            "+90 (533) 123-45-67",
            "(0533) 123 45 67",
            "90 533 123 45 67",
            "+90 0533 123 45 67",
            "0533.123.45.67",
            " 0533-123-45-67 ",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).map(|p| p.to_string()),
                Ok("+905331234567".to_string()),
                "{input}"
            );
        }
    }

    #[test]
    fn landlines_and_foreign_numbers() {
        assert_eq!(
            PhoneNumber::parse("0212 555 12 34").unwrap().as_str(),
            "+902125551234"
        );
        assert_eq!(
            PhoneNumber::parse("0850 303 12 34").unwrap().as_str(),
            "+908503031234"
        );
        assert_eq!(
            PhoneNumber::parse("+49 151 12345678").unwrap().as_str(),
            "+4915112345678"
        );
        assert_eq!(
            PhoneNumber::parse("0049 151 12345678").unwrap().as_str(),
            "+4915112345678"
        );
        assert_eq!(
            PhoneNumber::from_international_digits("4915112345678")
                .unwrap()
                .as_str(),
            "+4915112345678"
        );
        assert_eq!(
            PhoneNumber::from_international_digits("905331234567")
                .unwrap()
                .as_str(),
            "+905331234567"
        );
    }

    #[test]
    fn never_matchable_numbers_are_refused_with_a_reason() {
        assert_eq!(PhoneNumber::parse("").unwrap_err().code(), "empty");
        assert_eq!(
            PhoneNumber::parse("Anonymous").unwrap_err().code(),
            "hidden_caller_id"
        );
        assert_eq!(
            PhoneNumber::parse("GİZLİ").unwrap_err().code(),
            "hidden_caller_id"
        );
        assert_eq!(PhoneNumber::parse("204").unwrap_err().code(), "extension");
        assert_eq!(PhoneNumber::parse("1001").unwrap_err().code(), "extension");
        assert_eq!(
            PhoneNumber::parse("112").unwrap_err().code(),
            "short_number"
        );
        assert_eq!(
            PhoneNumber::parse("444 1 444").unwrap_err().code(),
            "short_number"
        );
        assert_eq!(
            PhoneNumber::parse("4441444").unwrap_err().code(),
            "short_number"
        );
        for prefixed in ["0444 1 444", "+90 444 14 44", "90 444 1444", "0090 4441444"] {
            assert_eq!(
                PhoneNumber::parse(prefixed).unwrap_err().code(),
                "short_number",
                "{prefixed}"
            );
        }
        assert_eq!(
            PhoneNumber::parse("0123 456 78 90").unwrap_err().code(),
            "invalid_turkish_number"
        );
        assert_eq!(
            PhoneNumber::parse("0533 123 45 6x").unwrap_err().code(),
            "invalid_character"
        );
        assert_eq!(
            PhoneNumber::parse("0533 123 45").unwrap_err().code(),
            "invalid_length"
        );
        assert_eq!(
            PhoneNumber::from_international_digits("90533")
                .unwrap_err()
                .code(),
            "invalid_length"
        );
        assert_eq!(
            PhoneNumber::from_international_digits("12")
                .unwrap_err()
                .code(),
            "invalid_length"
        );
    }

    #[test]
    fn display_and_masking() {
        let p = PhoneNumber::parse("05331234567").unwrap();
        assert_eq!(p.national_display(), "0533 123 45 67");
        assert_eq!(p.masked(), "+90 533 *** ** 67");
        assert_eq!(p.digits(), "905331234567");
        assert!(p.is_turkish_mobile());
        let de = PhoneNumber::parse("+4915112345678").unwrap();
        assert_eq!(de.masked(), "+491********78");
        assert!(!de.is_turkish());
    }

    proptest! {
        #[test]
        fn all_written_forms_of_a_mobile_agree(n in 5_000_000_000u64..6_000_000_000u64) {
            let nsn = n.to_string();
            let expected = format!("+90{nsn}");
            let spaced = format!("{} {} {} {}", &nsn[..3], &nsn[3..6], &nsn[6..8], &nsn[8..]);
            for form in [nsn.clone(), format!("0{nsn}"), format!("90{nsn}"), format!("+90{nsn}"), format!("0090{nsn}"), format!("0{spaced}"), format!("+90 {spaced}"), format!("+90 ({}) {}-{}-{}", &nsn[..3], &nsn[3..6], &nsn[6..8], &nsn[8..])] {
                let parsed = PhoneNumber::parse(&form).unwrap();
                prop_assert_eq!(parsed.as_str(), expected.as_str());
                prop_assert_eq!(PhoneNumber::parse(parsed.as_str()).unwrap(), parsed.clone());
                prop_assert_eq!(PhoneNumber::from_international_digits(parsed.digits()).unwrap(), parsed);
            }
        }

        #[test]
        fn parse_never_panics(input in "\\PC{0,40}") {
            let _ = PhoneNumber::parse(&input);
            let _ = PhoneNumber::from_international_digits(&input);
        }
    }
}
