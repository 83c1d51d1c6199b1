//! Turkish casing and folding. Rust's `to_lowercase` maps `I` to `i` and `İ` to `i̇` (with a
//! combining dot), both wrong in Turkish, where `I`↔`ı` and `İ`↔`i`.

/// Lower case with Turkish rules: `İSTANBUL` → `istanbul`, `ISPARTA` → `ısparta`.
pub fn to_lower_tr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            'I' => out.push('ı'),
            'İ' => out.push('i'),
            other => out.extend(other.to_lowercase()),
        }
    }
    out
}

/// Upper case with Turkish rules: `istanbul` → `İSTANBUL`, `ılgaz` → `ILGAZ`.
pub fn to_upper_tr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            'i' => out.push('İ'),
            'ı' => out.push('I'),
            other => out.extend(other.to_uppercase()),
        }
    }
    out
}

/// `AYŞE YILMAZ` → `Ayşe Yılmaz`, `ismail ışık` → `İsmail Işık`; whitespace collapsed.
pub fn title_case_tr(s: &str) -> String {
    s.split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => to_upper_tr(&first.to_string()) + &to_lower_tr(chars.as_str()),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A matching key for names: Turkish lower case without diacritics, whitespace collapsed, so
/// `Ayşe  YILMAZ` and `ayse yilmaz` fold equal.
pub fn fold_tr(s: &str) -> String {
    let lower = to_lower_tr(s);
    let mut out = String::with_capacity(lower.len());
    for ch in lower.chars() {
        match ch {
            'ç' => out.push('c'),
            'ğ' => out.push('g'),
            'ı' => out.push('i'),
            'ö' => out.push('o'),
            'ş' => out.push('s'),
            'ü' => out.push('u'),
            'â' => out.push('a'),
            'î' => out.push('i'),
            'û' => out.push('u'),
            // Combining marks left by decomposed input ("i̇", "ş").
            '\u{300}'..='\u{36f}' => {}
            other => out.push(other),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An e-mail's matching key, or `None` when it is not a plausible address. ASCII letters are
/// lowered with ASCII rules (`ALI@X.COM` is `ali@x.com`, never `alı@x.com`); `İ` and `ı`, which
/// Turkish keyboards slip in, become `i`.
pub fn fold_email(s: &str) -> Option<String> {
    let folded: String = s
        .trim()
        .chars()
        .map(|c| match c {
            'İ' | 'ı' => 'i',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            c => c.to_lowercase().next().unwrap_or(c),
        })
        .collect();
    let (local, domain) = folded.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !folded.chars().any(char::is_whitespace);
    plausible.then_some(folded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dotted_and_dotless_i_both_ways() {
        assert_eq!(to_lower_tr("İSTANBUL"), "istanbul");
        assert_eq!(to_lower_tr("ISPARTA"), "ısparta");
        assert_eq!(to_upper_tr("istanbul"), "İSTANBUL");
        assert_eq!(to_upper_tr("ılgaz"), "ILGAZ");
        assert_eq!(to_upper_tr("çağrı şöför ü"), "ÇAĞRI ŞÖFÖR Ü");
        assert_eq!(title_case_tr("AYŞE   YILMAZ"), "Ayşe Yılmaz");
        assert_eq!(title_case_tr("ismail ışık"), "İsmail Işık");
    }

    #[test]
    fn folding_ignores_case_and_diacritics() {
        assert_eq!(fold_tr("Ayşe  YILMAZ"), "ayse yilmaz");
        assert_eq!(fold_tr("ÇAĞLAR ÖZGÜR"), fold_tr("caglar ozgur"));
        assert_eq!(fold_tr("İĞDE"), "igde");
        // Naive lowercasing of İ leaves "i" + U+0307; folding removes the dot.
        assert_eq!(fold_tr("i\u{307}stanbul"), "istanbul");
    }

    #[test]
    fn emails_fold_with_ascii_rules() {
        assert_eq!(
            fold_email(" ALI.VELI@Ornek.COM.TR ").as_deref(),
            Some("ali.veli@ornek.com.tr")
        );
        assert_eq!(fold_email("İREM@x.com").as_deref(), Some("irem@x.com"));
        assert_eq!(fold_email("no-at-sign"), None);
        assert_eq!(fold_email("a@b"), None);
        assert_eq!(fold_email("a b@c.com"), None);
        assert_eq!(fold_email("@c.com"), None);
    }

    proptest! {
        #[test]
        fn folding_is_stable(s in "[a-zA-ZçğıöşüÇĞİÖŞÜ ]{0,30}") {
            prop_assert_eq!(fold_tr(&fold_tr(&s)), fold_tr(&s));
            prop_assert_eq!(fold_tr(&to_upper_tr(&s)), fold_tr(&s));
            prop_assert_eq!(fold_tr(&to_lower_tr(&s)), fold_tr(&s));
        }
    }
}
