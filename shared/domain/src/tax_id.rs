//! Turkish identity and tax numbers: TCKN (11 digits, persons) and VKN (10 digits, companies),
//! with their checksums (field-research §5.4). Sole proprietors use their TCKN as tax id.

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaxId {
    Tckn(String),
    Vkn(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxIdError {
    #[error("unexpected character {ch:?} in a tax id")]
    InvalidCharacter { ch: char },
    #[error("a tax id has 10 (VKN) or 11 (TCKN) digits, not {digits}")]
    InvalidLength { digits: usize },
    #[error("not a valid TCKN (checksum)")]
    InvalidTckn,
    #[error("not a valid VKN (checksum)")]
    InvalidVkn,
}

impl TaxIdError {
    pub fn code(&self) -> &'static str {
        match self {
            TaxIdError::InvalidCharacter { .. } => "invalid_character",
            TaxIdError::InvalidLength { .. } => "invalid_tax_id_length",
            TaxIdError::InvalidTckn => "invalid_tckn",
            TaxIdError::InvalidVkn => "invalid_vkn",
        }
    }
}

fn digits(s: &str) -> Option<Vec<u32>> {
    s.chars().map(|c| c.to_digit(10)).collect()
}

/// d10 = (7·(d1+d3+d5+d7+d9) − (d2+d4+d6+d8)) mod 10, d11 = (d1+…+d10) mod 10, d1 ≠ 0.
pub fn is_valid_tckn(s: &str) -> bool {
    match digits(s) {
        Some(d) if d.len() == 11 && d[0] != 0 => {
            let odd: i64 = [0, 2, 4, 6, 8].iter().map(|&i| i64::from(d[i])).sum();
            let even: i64 = [1, 3, 5, 7].iter().map(|&i| i64::from(d[i])).sum();
            let tenth = (7 * odd - even).rem_euclid(10);
            let eleventh = d[..10].iter().map(|&x| i64::from(x)).sum::<i64>() % 10;
            i64::from(d[9]) == tenth && i64::from(d[10]) == eleventh
        }
        _ => false,
    }
}

fn vkn_check_digit(first_nine: &[u32]) -> u32 {
    let sum: u32 = first_nine
        .iter()
        .enumerate()
        .map(|(i, &digit)| {
            let p = 9 - i as u32;
            let t = (digit + p) % 10;
            if t == 0 {
                0
            } else {
                match (t * 2u32.pow(p)) % 9 {
                    0 => 9,
                    v => v,
                }
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

pub fn is_valid_vkn(s: &str) -> bool {
    match digits(s) {
        Some(d) if d.len() == 10 => vkn_check_digit(&d[..9]) == d[9],
        _ => false,
    }
}

impl TaxId {
    pub fn parse(input: &str) -> Result<TaxId, TaxIdError> {
        let mut clean = String::with_capacity(input.len());
        for ch in input.chars() {
            match ch {
                '0'..='9' => clean.push(ch),
                ' ' | '-' | '.' => {}
                other => return Err(TaxIdError::InvalidCharacter { ch: other }),
            }
        }
        match clean.len() {
            11 if is_valid_tckn(&clean) => Ok(TaxId::Tckn(clean)),
            11 => Err(TaxIdError::InvalidTckn),
            10 if is_valid_vkn(&clean) => Ok(TaxId::Vkn(clean)),
            10 => Err(TaxIdError::InvalidVkn),
            n => Err(TaxIdError::InvalidLength { digits: n }),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaxId::Tckn(s) | TaxId::Vkn(s) => s,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TaxId::Tckn(_) => "tckn",
            TaxId::Vkn(_) => "vkn",
        }
    }

    /// First two and last two digits: `10*******46`.
    pub fn masked(&self) -> String {
        let s = self.as_str();
        format!(
            "{}{}{}",
            &s[..2],
            "*".repeat(s.len() - 4),
            &s[s.len() - 2..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn published_vectors() {
        assert!(is_valid_tckn("10000000146"));
        assert!(is_valid_tckn("17291716060"));
        assert!(!is_valid_tckn("17291716050"));
        assert!(!is_valid_tckn("01729171606"));
        assert!(is_valid_vkn("4540536920"));
        assert!(!is_valid_vkn("4540536921"));
        assert_eq!(
            TaxId::parse("100 000 001 46"),
            Ok(TaxId::Tckn("10000000146".into()))
        );
        assert_eq!(TaxId::parse("4540536920").unwrap().kind(), "vkn");
        assert_eq!(
            TaxId::parse("17291716050").unwrap_err().code(),
            "invalid_tckn"
        );
        assert_eq!(
            TaxId::parse("4540536921").unwrap_err().code(),
            "invalid_vkn"
        );
        assert_eq!(
            TaxId::parse("123").unwrap_err().code(),
            "invalid_tax_id_length"
        );
        assert_eq!(
            TaxId::parse("45405369a0").unwrap_err().code(),
            "invalid_character"
        );
        assert_eq!(TaxId::parse("10000000146").unwrap().masked(), "10*******46");
    }

    fn tckn_from(nine: &[u32]) -> String {
        let odd: i64 = [0, 2, 4, 6, 8].iter().map(|&i| i64::from(nine[i])).sum();
        let even: i64 = [1, 3, 5, 7].iter().map(|&i| i64::from(nine[i])).sum();
        let tenth = (7 * odd - even).rem_euclid(10) as u32;
        let eleventh = (nine.iter().sum::<u32>() + tenth) % 10;
        nine.iter()
            .chain([tenth, eleventh].iter())
            .map(|d| char::from_digit(*d, 10).unwrap())
            .collect()
    }

    proptest! {
        #[test]
        fn any_single_digit_change_breaks_a_tckn(first in 1u32..10, rest in proptest::collection::vec(0u32..10, 8), pos in 0usize..11, delta in 1u32..10) {
            let nine: Vec<u32> = std::iter::once(first).chain(rest).collect();
            let valid = tckn_from(&nine);
            prop_assert!(is_valid_tckn(&valid));
            let mut changed: Vec<u32> = valid.chars().map(|c| c.to_digit(10).unwrap()).collect();
            changed[pos] = (changed[pos] + delta) % 10;
            let changed: String = changed.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
            // The eleventh digit is the sum of the first ten, so any one change shows.
            prop_assert!(!is_valid_tckn(&changed));
        }

        #[test]
        fn computed_vkn_check_digit_validates(nine in proptest::collection::vec(0u32..10, 9)) {
            let vkn: String = nine.iter().chain(std::iter::once(&vkn_check_digit(&nine))).map(|d| char::from_digit(*d, 10).unwrap()).collect();
            prop_assert!(is_valid_vkn(&vkn));
            prop_assert!(TaxId::parse(&vkn).is_ok());
        }
    }
}
