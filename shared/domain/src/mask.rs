//! KVKK masking for integration-log payloads: phones, e-mails and identity numbers are cut to
//! what an operator needs to recognise them; secrets are removed whatever their shape.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::phone::PhoneNumber;
use crate::tax_id::{is_valid_tckn, is_valid_vkn};

pub const REDACTED: &str = "***";

/// `+90 533 *** ** 67` when it parses as a phone; otherwise first and last two characters.
pub fn mask_phone(s: &str) -> String {
    match PhoneNumber::parse(s).or_else(|_| PhoneNumber::from_international_digits(s)) {
        Ok(phone) => phone.masked(),
        Err(_) => keep_ends(s.trim()),
    }
}

/// `ayse.yilmaz@ornek.com.tr` → `a***@ornek.com.tr`.
pub fn mask_email(s: &str) -> String {
    match s.trim().split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => keep_ends(s.trim()),
    }
}

/// `10000000146` → `10*******46`.
pub fn mask_tax_id(s: &str) -> String {
    keep_ends(s.trim())
}

/// `Ayşe Yılmaz` → `A*** Y***`: enough to recognise a profile, not to identify a person.
pub fn mask_name(s: &str) -> String {
    s.split_whitespace()
        .map(|word| {
            let first: String = word.chars().take(1).collect();
            format!("{first}***")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A WhatsApp message id is the sender's number in base64: logs keep a stable hash of it
/// (`wamid.#3f2a9c01d4e5`), so one message can still be followed across records.
pub fn mask_wamid(wamid: &str) -> String {
    let digest = Sha256::digest(wamid.as_bytes());
    format!("wamid.#{}", hex::encode(&digest[..6]))
}

const WAMID_PREFIX: &str = "wamid.";

fn is_wamid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+/=_-".contains(c)
}

/// A wamid starting at `start`: `wamid.` followed by base64 text.
fn wamid_at(chars: &[char], start: usize) -> Option<(usize, String)> {
    let prefix: Vec<char> = WAMID_PREFIX.chars().collect();
    if chars.len() < start + prefix.len() + 1 || chars[start..start + prefix.len()] != prefix[..] {
        return None;
    }
    if start > 0 && is_word_char(chars[start - 1]) {
        return None;
    }
    let mut end = start + prefix.len();
    while end < chars.len() && is_wamid_char(chars[end]) {
        end += 1;
    }
    if end == start + prefix.len() || chars[start + prefix.len()] == '#' {
        return None;
    }
    let wamid: String = chars[start..end].iter().collect();
    Some((end, mask_wamid(&wamid)))
}

fn keep_ends(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 4))
}

enum KeyKind {
    Secret,
    Name,
    Phone,
    Email,
    Identity,
    Other,
}

fn classify(key: &str) -> KeyKind {
    let k = key.to_ascii_lowercase();
    let secret = [
        "secret",
        "password",
        "token",
        "authorization",
        "signature",
        "api_key",
        "apikey",
        "x-api-key",
        "credential",
        // Payment cards (InsurUp's sync purchase takes one): never kept, whatever the key.
        "cardnumber",
        "card_number",
        "cvc",
        "cvv",
        "expirymonth",
        "expiryyear",
        "kartno",
    ];
    if secret.iter().any(|s| k.contains(s)) {
        return KeyKind::Secret;
    }
    let name = [
        "name",
        "profile_name",
        "formatted_name",
        "first_name",
        "last_name",
        "full_name",
        "display_name",
        "ad",
        "soyad",
        "ad_soyad",
        "adsoyad",
        "isim",
    ];
    if name.contains(&k.as_str()) {
        return KeyKind::Name;
    }
    // Ids of the business's own number and the business number itself are not personal data.
    if k == "phone_number_id" || k == "display_phone_number" {
        return KeyKind::Other;
    }
    let phone = [
        "from",
        "to",
        "wa_id",
        "recipient_id",
        "caller_id",
        "callerid",
        // PBX call events: ours (`caller`), NetGSM's live push and its Turkish CDR keys.
        "caller",
        "customer_num",
        "arayan",
        "clid",
        "msisdn",
        "mobile",
        "gsm",
        "tel",
        "new_wa_id",
        "recipient",
        "input",
    ];
    if phone.contains(&k.as_str()) || k.contains("phone") {
        return KeyKind::Phone;
    }
    if k.contains("email") || k == "mail" || k == "e_mail" {
        return KeyKind::Email;
    }
    let identity = [
        "tckn",
        "vkn",
        "tax_id",
        "taxid",
        "tax_number",
        "taxnumber",
        "identity_number",
        "identitynumber",
        "kimlik_no",
        "tc_kimlik_no",
        "tckimlikno",
        "vergi_no",
        "vergino",
    ];
    if identity.contains(&k.as_str()) {
        return KeyKind::Identity;
    }
    KeyKind::Other
}

/// Masks a JSON payload in place before it is stored in the integration log.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match classify(key) {
                    KeyKind::Secret => *v = Value::String(REDACTED.into()),
                    KeyKind::Name => mask_leaves(v, &|s| mask_text(&mask_name(s))),
                    KeyKind::Phone => mask_leaves(v, &mask_phone),
                    KeyKind::Email => mask_leaves(v, &mask_email),
                    KeyKind::Identity => mask_leaves(v, &mask_tax_id),
                    KeyKind::Other => mask_json(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(s) => {
            let masked = mask_text(s);
            if masked != *s {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Applies `mask` to every string or number under a personal-data key.
fn mask_leaves(value: &mut Value, mask: &dyn Fn(&str) -> String) {
    match value {
        Value::String(s) => *s = mask(s),
        Value::Number(n) => *value = Value::String(mask(&n.to_string())),
        Value::Array(items) => items.iter_mut().for_each(|v| mask_leaves(v, mask)),
        Value::Object(_) => mask_json(value),
        _ => {}
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_email_local(c: char) -> bool {
    c.is_ascii_alphanumeric() || "._%+-".contains(c)
}

fn is_email_domain(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-".contains(c)
}

/// Masks phone numbers, e-mail addresses and TCKN/VKN found in free text (a WhatsApp message
/// body such as "numaram 0533 123 45 67"). Numbers glued to letters (ids, wamids), dates and
/// amounts are left alone.
pub fn mask_text(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some((end, replacement)) = wamid_at(&chars, i)
            .or_else(|| email_at(&chars, i))
            .or_else(|| number_at(&chars, i))
        {
            out.push_str(&replacement);
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// An e-mail starting at `start` (which must begin its local part).
fn email_at(chars: &[char], start: usize) -> Option<(usize, String)> {
    if !is_email_local(chars[start]) || (start > 0 && is_email_local(chars[start - 1])) {
        return None;
    }
    let mut at = start;
    while at < chars.len() && is_email_local(chars[at]) {
        at += 1;
    }
    if at == start || at >= chars.len() || chars[at] != '@' {
        return None;
    }
    let mut end = at + 1;
    while end < chars.len() && is_email_domain(chars[end]) {
        end += 1;
    }
    while end > at + 1 && chars[end - 1] == '.' {
        end -= 1;
    }
    let domain: String = chars[at + 1..end].iter().collect();
    if !domain.contains('.') || domain.starts_with('.') {
        return None;
    }
    let email: String = chars[start..end].iter().collect();
    Some((end, mask_email(&email)))
}

/// A phone number or identity number starting at `start`: digits with single separators
/// between them, not glued to letters or other digits on either side. The longest such run
/// that is a phone or identity number wins ("0533 123 45 67 12" masks the phone, keeps "12").
fn number_at(chars: &[char], start: usize) -> Option<(usize, String)> {
    let first = chars[start];
    if !(first.is_ascii_digit() || first == '+' || first == '(')
        || (start > 0 && (is_word_char(chars[start - 1]) || chars[start - 1] == '+'))
    {
        return None;
    }
    let mut end = start + usize::from(first == '+' || first == '(');
    let mut digits = String::new();
    // (end position, digits so far) after each digit that may close a number.
    let mut candidates = Vec::new();
    while end < chars.len() && digits.len() <= 15 {
        let c = chars[end];
        if c.is_ascii_digit() {
            digits.push(c);
            end += 1;
            if end == chars.len() || !is_word_char(chars[end]) {
                candidates.push((end, digits.clone()));
            }
        } else if matches!(c, ' ' | '-' | '.' | '(' | ')')
            && !digits.is_empty()
            && end + 1 < chars.len()
            && (chars[end + 1].is_ascii_digit() || (c == ')' && chars[end + 1] == ' '))
        {
            end += 1;
        } else {
            break;
        }
    }
    let marked = first == '+' || first == '(' || digits.starts_with('0');
    candidates
        .into_iter()
        .rev()
        .filter(|(_, d)| (10..=15).contains(&d.len()))
        .find_map(|(end, digits)| {
            let run: String = chars[start..end].iter().collect();
            if let Ok(phone) = PhoneNumber::parse(&run) {
                // A bare 10-digit run could be a date or a count; only mobiles and numbers written
                // the way phones are written ('+', leading 0) are phones.
                if phone.is_turkish_mobile() || marked {
                    return Some((end, phone.masked()));
                }
            }
            (digits.len() == 11 && is_valid_tckn(&digits)
                || digits.len() == 10 && is_valid_vkn(&digits))
            .then(|| (end, mask_tax_id(&digits)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn masks_each_kind() {
        assert_eq!(mask_phone("905331234567"), "+90 533 *** ** 67");
        assert_eq!(mask_phone("0533 123 45 67"), "+90 533 *** ** 67");
        assert_eq!(mask_phone("204"), "***");
        assert_eq!(mask_email("ayse.yilmaz@ornek.com.tr"), "a***@ornek.com.tr");
        assert_eq!(mask_tax_id("10000000146"), "10*******46");
    }

    #[test]
    fn whatsapp_payload_keeps_ids_and_loses_personal_data() {
        let mut v = json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
                "metadata": { "display_phone_number": "908503031234", "phone_number_id": "106540352242922" },
                "contacts": [{ "profile": { "name": "Ayşe" }, "wa_id": "905331234567" }],
                "messages": [{ "from": "905331234567", "id": "wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSQjFBOEM3RjRGRTYwRUE3RTAyAA==", "timestamp": "1764000000", "type": "text",
                    "text": { "body": "numaram 0533 123 45 67, mailim ayse@ornek.com, TC 10000000146. Toplam 1250,50 TL, 2026-11-24 12:00" } }],
                "statuses": [{ "id": "wamid.X", "recipient_id": "905331234567", "status": "read" }]
            } }] }]
        });
        mask_json(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("905331234567")
                && !text.contains("0533 123 45 67")
                && !text.contains("ayse@ornek.com")
                && !text.contains("10000000146"),
            "{text}"
        );
        let value = &v["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        assert_eq!(value["metadata"]["display_phone_number"], "908503031234");
        // The wamid is the sender's number in base64: only a stable hash of it stays.
        let masked_id = value["messages"][0]["id"].as_str().unwrap();
        assert_eq!(
            masked_id,
            mask_wamid("wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSQjFBOEM3RjRGRTYwRUE3RTAyAA==")
        );
        assert!(!text.contains("HBgMOTA1MzMx"), "{text}");
        assert_eq!(value["contacts"][0]["profile"]["name"], "A***");
        assert_eq!(value["messages"][0]["timestamp"], "1764000000");
        assert_eq!(value["messages"][0]["from"], "+90 533 *** ** 67");
        let body = value["messages"][0]["text"]["body"].as_str().unwrap();
        assert!(
            body.contains("Toplam 1250,50 TL, 2026-11-24 12:00"),
            "{body}"
        );
        assert!(
            body.contains("+90 533 *** ** 67")
                && body.contains("a***@ornek.com")
                && body.contains("10*******46"),
            "{body}"
        );
    }

    #[test]
    fn wamids_and_names_are_masked_wherever_they_appear() {
        let wamid = "wamid.HBgMOTA1MzMxMjM0NTY3FQIAERgSQjFBOEM3RjRGRTYwRUE3RTAyAA==";
        let masked = mask_text(&format!("{wamid}:read"));
        assert_eq!(masked, format!("{}:read", mask_wamid(wamid)));
        assert!(masked.starts_with("wamid.#") && !masked.contains("HBgM"));
        // Stable, so records of one message can be joined; idempotent on already-masked text.
        assert_eq!(mask_text(&masked), masked);
        assert_eq!(
            mask_text(&format!("reply to {wamid}")),
            format!("reply to {}", mask_wamid(wamid))
        );
        assert_eq!(mask_name("Ayşe  Yılmaz"), "A*** Y***");
        let mut v = json!({"profile_name": "İsmail Öztürk", "entry_id": format!("wa:{wamid}")});
        mask_json(&mut v);
        assert_eq!(v["profile_name"], "İ*** Ö***");
        assert!(!v.to_string().contains("HBgM"), "{v}");
    }

    #[test]
    fn payment_cards_are_removed() {
        let mut v = json!({ "card": { "cardNumber": "4543600299100712", "cvc": "123", "expiryMonth": "12", "holderName": "A" } });
        mask_json(&mut v);
        let text = v.to_string();
        assert!(
            !text.contains("4543600299100712") && !text.contains("123"),
            "{text}"
        );
    }

    #[test]
    fn secrets_are_removed_whatever_their_shape() {
        let mut v = json!({ "access_token": "EAAG123", "headers": { "Authorization": "Bearer x", "X-Hub-Signature-256": "sha256=ab" }, "app_secret": { "nested": 1 }, "ok": "fine" });
        mask_json(&mut v);
        assert_eq!(
            v,
            json!({ "access_token": "***", "headers": { "Authorization": "***", "X-Hub-Signature-256": "***" }, "app_secret": "***", "ok": "fine" })
        );
    }

    #[test]
    fn ids_amounts_and_dates_are_untouched() {
        for text in [
            "1234567890123456",
            "order 1764000000",
            "2026-11-24 12:00",
            "Toplam 1.250,50 TL",
            "REF905331234567X",
        ] {
            assert_eq!(mask_text(text), text);
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_never_leaks_a_mobile(prefix in "\\PC{0,20}", n in 5_000_000_000u64..6_000_000_000u64, suffix in "\\PC{0,20}") {
            let _ = mask_text(&prefix);
            let text = format!("{prefix} 0{n} {suffix}");
            let masked = mask_text(&text);
            prop_assert!(!masked.contains(&format!("0{n}")), "{}", masked);
        }
    }
}
