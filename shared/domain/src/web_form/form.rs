//! A website form's fields (JSON or `application/x-www-form-urlencoded`) validated into a
//! [`CapturedLead`]: every problem named by field, Turkish phones to E.164, e-mails folded,
//! UTM tags from explicit fields or the landing page's URL (explicit wins), a consent box to
//! İYS-shaped records, anything else kept as a custom field.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::capture::{split_full_name, CapturedLead};
use crate::consent::{records_for, ConsentSource, ConsentStatus};
use crate::error::FieldError;
use crate::party::{LeadSource, Utm};
use crate::phone::PhoneNumber;
use crate::text::{fold_email, fold_tr, title_case_tr};

/// Field lengths (characters): a form field is a line; a message a few paragraphs.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_MESSAGE_CHARS: usize = 5000;
pub const MAX_FIELD_CHARS: usize = 1000;
pub const MAX_CUSTOM_FIELDS: usize = 50;
/// Filled only by bots (hidden from people with CSS): a submission that fills it is dropped.
pub const HONEYPOTS: [&str; 3] = ["website", "_gotcha", "hp"];

/// The fields of one submission: name → values (a repeated field keeps every value).
pub type Fields = BTreeMap<String, Vec<String>>;

/// Reads a JSON object (strings, numbers, booleans, arrays of them) or a urlencoded body.
pub fn read_fields(body: &[u8], content_type: Option<&str>) -> Result<Fields, FieldError> {
    let is_form = content_type
        .map(|c| c.to_ascii_lowercase())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut fields = Fields::new();
    if is_form {
        for (name, value) in url::form_urlencoded::parse(body) {
            fields
                .entry(name.trim().to_string())
                .or_default()
                .push(value.into_owned());
        }
        return Ok(fields);
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        FieldError::new(
            "body",
            "invalid_json",
            format!("not JSON or a urlencoded form: {e}"),
        )
    })?;
    let serde_json::Value::Object(object) = value else {
        return Err(FieldError::new(
            "body",
            "invalid_type",
            "must be a JSON object of fields",
        ));
    };
    for (name, value) in object {
        let texts = match value {
            serde_json::Value::Array(items) => items.into_iter().map(scalar).collect(),
            other => vec![scalar(other)],
        };
        let texts: Option<Vec<String>> = texts.into_iter().collect();
        let texts = texts.ok_or_else(|| {
            FieldError::new(
                name.clone(),
                "invalid_type",
                "must be a string, number, boolean or a list of them",
            )
        })?;
        fields.insert(name.trim().to_string(), texts);
    }
    Ok(fields)
}

fn scalar(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Null => Some(String::new()),
        _ => None,
    }
}

/// True when a honeypot field is filled: a bot.
pub fn is_bot(fields: &Fields) -> bool {
    HONEYPOTS.iter().any(|name| {
        fields
            .get(*name)
            .is_some_and(|v| v.iter().any(|s| !s.trim().is_empty()))
    })
}

/// Names a field answers to (English, Turkish, common form builders').
const FULL_NAME: [&str; 5] = ["full_name", "name", "ad_soyad", "adsoyad", "isim"];
const FIRST_NAME: [&str; 3] = ["first_name", "firstname", "ad"];
const LAST_NAME: [&str; 3] = ["last_name", "lastname", "soyad"];
const EMAIL: [&str; 3] = ["email", "e_mail", "eposta"];
const PHONE: [&str; 5] = ["phone", "phone_number", "telefon", "tel", "gsm"];
const MESSAGE: [&str; 3] = ["message", "mesaj", "not"];
const SERVICE: [&str; 4] = ["service", "requested_service", "hizmet", "talep"];
const COMPANY: [&str; 3] = ["company", "company_name", "firma"];
const LANDING: [&str; 3] = ["landing_page", "page_url", "url"];
const REFERRER: [&str; 2] = ["referrer", "referer"];
const CONSENT: [&str; 4] = ["consent", "kvkk", "iys_onay", "izin"];
const UTM: [&str; 8] = [
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "gclid",
    "fbclid",
    "msclkid",
];

fn first_of<'a>(fields: &'a Fields, names: &[&str]) -> Option<(&'a str, &'a str)> {
    names.iter().find_map(|n| {
        fields.get_key_value(*n).and_then(|(k, v)| {
            v.iter()
                .find(|s| !s.trim().is_empty())
                .map(|s| (k.as_str(), s.trim()))
        })
    })
}

fn capped<'a>(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &'a str,
    max: usize,
) -> Option<&'a str> {
    if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
        return None;
    }
    Some(value)
}

/// The UTM tags and click ids of a landing-page URL's query.
pub fn utm_from_url(url: &str) -> Utm {
    let Ok(parsed) = url::Url::parse(url) else {
        return Utm::default();
    };
    let mut utm = Utm::default();
    for (name, value) in parsed.query_pairs() {
        set_utm(&mut utm, &name, value.trim());
    }
    utm
}

fn set_utm(utm: &mut Utm, name: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let slot = match name {
        "utm_source" => &mut utm.source,
        "utm_medium" => &mut utm.medium,
        "utm_campaign" => &mut utm.campaign,
        "utm_content" => &mut utm.content,
        "utm_term" => &mut utm.term,
        "gclid" => &mut utm.gclid,
        "fbclid" => &mut utm.fbclid,
        "msclkid" => &mut utm.msclkid,
        _ => return,
    };
    *slot = Some(value.chars().take(MAX_FIELD_CHARS).collect());
}

fn checked(value: &str) -> bool {
    matches!(
        fold_tr(value).as_str(),
        "on" | "1" | "true" | "yes" | "evet" | "kabul" | "onay" | "onayliyorum"
    )
}

/// Validates a submission into a lead; `Err` names every bad field. `submission_id` is the
/// lead's external id (the Idempotency-Key, or the trace id).
pub fn validate(
    fields: &Fields,
    submission_id: &str,
    at: DateTime<Utc>,
) -> Result<CapturedLead, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lead = CapturedLead::new(LeadSource::WebForm, submission_id, at);
    if let Some((field, full)) = first_of(fields, &FULL_NAME) {
        if let Some(full) = capped(&mut errors, field, full, MAX_NAME_CHARS) {
            (lead.first_name, lead.last_name) = split_full_name(full);
        }
    }
    for (names, slot) in [(&FIRST_NAME[..], 0), (&LAST_NAME[..], 1)] {
        if let Some((field, name)) = first_of(fields, names) {
            if let Some(name) = capped(&mut errors, field, name, MAX_NAME_CHARS) {
                let name = Some(title_case_tr(name));
                if slot == 0 {
                    lead.first_name = name;
                } else {
                    lead.last_name = name;
                }
            }
        }
    }
    if let Some((field, email)) = first_of(fields, &EMAIL) {
        match fold_email(email) {
            Some(folded) if folded.len() <= 254 => lead.email = Some(folded),
            _ => errors.push(FieldError::new(
                field,
                "invalid_email",
                "not an e-mail address",
            )),
        }
    }
    if let Some((field, phone)) = first_of(fields, &PHONE) {
        match PhoneNumber::parse(phone) {
            Ok(phone) => lead.phone = Some(phone),
            Err(e) => errors.push(FieldError::new(field, "invalid_phone", e.to_string())),
        }
    }
    if lead.phone.is_none()
        && lead.email.is_none()
        && !errors
            .iter()
            .any(|e| e.code == "invalid_phone" || e.code == "invalid_email")
    {
        errors.push(FieldError::new(
            "phone",
            "missing_contact",
            "a phone number or an e-mail address is required",
        ));
    }
    let text = |errors: &mut Vec<FieldError>, names: &[&str], max| {
        first_of(fields, names)
            .and_then(|(field, value)| capped(errors, field, value, max).map(str::to_string))
    };
    lead.message = text(&mut errors, &MESSAGE, MAX_MESSAGE_CHARS);
    lead.requested_service = text(&mut errors, &SERVICE, MAX_FIELD_CHARS);
    lead.company = text(&mut errors, &COMPANY, MAX_FIELD_CHARS);
    // Explicit tags win over the landing page's query.
    if let Some(landing) = text(&mut errors, &LANDING, MAX_FIELD_CHARS) {
        lead.utm = utm_from_url(&landing);
        lead.custom.insert("landing_page".into(), vec![landing]);
    }
    if let Some(referrer) = text(&mut errors, &REFERRER, MAX_FIELD_CHARS) {
        lead.custom.insert("referrer".into(), vec![referrer]);
    }
    for name in UTM {
        if let Some((_, value)) = first_of(fields, &[name]) {
            set_utm(&mut lead.utm, name, value);
        }
    }
    let known: Vec<&str> = [
        &FULL_NAME[..],
        &FIRST_NAME,
        &LAST_NAME,
        &EMAIL,
        &PHONE,
        &MESSAGE,
        &SERVICE,
        &COMPANY,
        &LANDING,
        &REFERRER,
        &CONSENT,
        &UTM,
        &HONEYPOTS,
    ]
    .concat();
    for (name, values) in fields {
        if known.contains(&name.as_str()) || name.is_empty() {
            continue;
        }
        if lead.custom.len() >= MAX_CUSTOM_FIELDS {
            errors.push(FieldError::new(
                name.clone(),
                "too_many_fields",
                format!("at most {MAX_CUSTOM_FIELDS} custom fields"),
            ));
            break;
        }
        if name.chars().count() > 100 {
            errors.push(FieldError::new(
                "fields",
                "too_long",
                "a field name of more than 100 characters",
            ));
            continue;
        }
        let mut kept = Vec::new();
        for value in values {
            if let Some(value) = capped(&mut errors, name, value.trim(), MAX_FIELD_CHARS) {
                if !value.is_empty() {
                    kept.push(value.to_string());
                }
            }
        }
        if !kept.is_empty() {
            lead.custom.insert(name.clone(), kept);
        }
    }
    if let Some((field, value)) = first_of(fields, &CONSENT) {
        if checked(value) {
            let phone = lead.phone.as_ref().map(|p| p.as_str().to_string());
            lead.consents = records_for(
                phone.as_deref(),
                lead.email.as_deref(),
                ConsentStatus::Onay,
                ConsentSource::HsWeb,
                at,
                field,
            );
        }
    }
    if errors.is_empty() {
        Ok(lead)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-24T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_urlencoded_turkish_form_becomes_a_lead_with_utm_from_the_landing_page() {
        let body = "ad_soyad=AY%C5%9EE+NUR+YILMAZ&telefon=0533+123+45+67&email=Ayse%40Ornek.com\
                    &mesaj=Kasko+teklifi&hizmet=Kasko&kvkk=on&arac_modeli=Egea\
                    &landing_page=https%3A%2F%2Fornek.com.tr%2Fkasko%3Futm_source%3Dgoogle%26utm_medium%3Dcpc%26utm_campaign%3Dkasim%26gclid%3DAbc\
                    &utm_campaign=kasim-2026";
        let fields =
            read_fields(body.as_bytes(), Some("application/x-www-form-urlencoded")).unwrap();
        let lead = validate(&fields, "sub-1", at()).unwrap();
        assert_eq!(
            (lead.first_name.as_deref(), lead.last_name.as_deref()),
            (Some("Ayşe Nur"), Some("Yılmaz"))
        );
        assert_eq!(lead.phone.unwrap().as_str(), "+905331234567");
        assert_eq!(lead.email.as_deref(), Some("ayse@ornek.com"));
        assert_eq!(lead.requested_service.as_deref(), Some("Kasko"));
        assert_eq!(lead.utm.source.as_deref(), Some("google"));
        assert_eq!(
            lead.utm.campaign.as_deref(),
            Some("kasim-2026"),
            "explicit wins"
        );
        assert_eq!(lead.utm.gclid.as_deref(), Some("Abc"));
        assert_eq!(lead.custom["arac_modeli"], vec!["Egea"]);
        assert_eq!(lead.consents.len(), 3);
        assert_eq!(lead.source, LeadSource::WebForm);
    }

    #[test]
    fn every_bad_field_is_named() {
        let fields = read_fields(
            br#"{"name": "A", "phone": "444 1 444", "email": "not-an-email", "message": 7}"#,
            Some("application/json"),
        )
        .unwrap();
        let errors = validate(&fields, "s", at()).unwrap_err();
        let named: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            named,
            [("email", "invalid_email"), ("phone", "invalid_phone")]
        );
        let errors = validate(
            &read_fields(br#"{"name": "Ali"}"#, None).unwrap(),
            "s",
            at(),
        )
        .unwrap_err();
        assert_eq!(errors[0].code, "missing_contact");
        let long = format!(
            r#"{{"email": "a@b.com", "message": "{}"}}"#,
            "x".repeat(MAX_MESSAGE_CHARS + 1)
        );
        let errors = validate(&read_fields(long.as_bytes(), None).unwrap(), "s", at()).unwrap_err();
        assert_eq!(
            (errors[0].field.as_str(), errors[0].code.as_str()),
            ("message", "too_long")
        );
        assert_eq!(read_fields(b"[1]", None).unwrap_err().code, "invalid_type");
        assert_eq!(read_fields(b"{", None).unwrap_err().code, "invalid_json");
        assert_eq!(
            read_fields(br#"{"x": {"y": 1}}"#, None).unwrap_err().field,
            "x"
        );
    }

    #[test]
    fn a_filled_honeypot_is_a_bot() {
        assert!(is_bot(
            &read_fields(br#"{"email": "a@b.com", "website": "http://spam"}"#, None).unwrap()
        ));
        assert!(!is_bot(
            &read_fields(br#"{"email": "a@b.com", "website": ""}"#, None).unwrap()
        ));
    }
}
