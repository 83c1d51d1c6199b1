//! Express's wire shapes: every field name, read record by record (inferred names marked in
//! `mod.rs`'s header), and Express's reading of its refusals.

use chrono::{DateTime, NaiveDateTime, Utc};
use onecrm_domain::error::{FieldError, PortError};
use onecrm_domain::express::campaign::{Campaign, CampaignStatus, Delivery, ReportRow};
use onecrm_domain::express::member::Member;
use onecrm_domain::express::ports::ExpressError;
use onecrm_domain::text::fold_email;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::super::Verdict;
use super::NO_PACKAGE_CODE;

/// The integrator's credentials.
#[derive(Deserialize)]
pub(super) struct Integrator {
    pub(super) client_name: String,
    pub(super) password: String,
}

/// The tenant's secret.
#[derive(Deserialize)]
pub(super) struct Account {
    pub(super) api_key: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenAnswer {
    pub(super) token_value: String,
    /// `<DateTime>`: ISO 8601, with or without an offset (then UTC).
    pub(super) expire_time: String,
}

#[derive(Clone)]
pub(super) struct Token {
    pub(super) value: String,
    pub(super) renew_at: DateTime<Utc>,
}

/// inferred: the paged answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Paged {
    #[serde(default)]
    pub(super) data: Vec<Value>,
    #[serde(default)]
    pub(super) total_count: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListWire {
    pub(super) id: Value,
    pub(super) name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MemberWire {
    member_id: Value,
    email: String,
    /// İYS e-mail permission: `ONAY` / `RET`.
    #[serde(default)]
    permission_status: Option<String>,
    #[serde(default)]
    unsubscribed: bool,
    #[serde(default)]
    unsubscribe_date: Option<String>,
    #[serde(default)]
    iys_consent_date: Option<String>,
    #[serde(default)]
    iys_consent_source: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CampaignWire {
    pub(super) id: Value,
    pub(super) name: String,
    #[serde(default)]
    subject: Option<String>,
    status: CampaignStatus,
    #[serde(default)]
    send_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TotalsWire {
    #[serde(default)]
    pub(super) sent: u64,
    #[serde(default)]
    pub(super) hard_bounced: u64,
    #[serde(default)]
    pub(super) soft_bounced: u64,
    #[serde(default)]
    pub(super) opened: u64,
    #[serde(default)]
    pub(super) clicked: u64,
    #[serde(default)]
    pub(super) unsubscribed: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RowWire {
    member_id: Value,
    email: String,
    status: Delivery,
    #[serde(default)]
    send_date: Option<String>,
    #[serde(default)]
    open_date: Option<String>,
    #[serde(default)]
    click_date: Option<String>,
}

/// An id Express may give as a number or a string.
pub(super) fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Express's times: ISO 8601 with an offset, or without one in Turkish time.
pub(super) fn time(text: &Option<String>) -> Option<DateTime<Utc>> {
    let text = text.as_deref()?.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    naive
        .and_local_timezone(chrono_tz::Europe::Istanbul)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// Each record read on its own; one that does not is named (`members[3].email`).
pub(super) fn records<W: DeserializeOwned, T>(
    what: &str,
    data: Vec<Value>,
    from: u64,
    read: impl Fn(W) -> Result<T, FieldError>,
) -> Vec<Result<T, Vec<FieldError>>> {
    data.into_iter()
        .enumerate()
        .map(|(i, value)| {
            let name = value
                .get("memberId")
                .or_else(|| value.get("id"))
                .and_then(id_text)
                .unwrap_or_else(|| (from + i as u64).to_string());
            let wire: W = serde_json::from_value(value).map_err(|e| {
                vec![FieldError::new(
                    format!("{what}[{name}]"),
                    "invalid_record",
                    e.to_string(),
                )]
            })?;
            read(wire).map_err(|mut e| {
                e.field = format!("{what}[{name}].{}", e.field);
                vec![e]
            })
        })
        .collect()
}

pub(super) fn email(text: &str) -> Result<String, FieldError> {
    fold_email(text)
        .ok_or_else(|| FieldError::new("email", "invalid_email", "not an e-mail address"))
}

pub(super) fn member_of(w: MemberWire) -> Result<Member, FieldError> {
    let member_id = id_text(&w.member_id).ok_or_else(|| FieldError::missing("memberId"))?;
    let permission = match w.permission_status.as_deref().map(str::trim) {
        None | Some("") => false,
        Some(s) if s.eq_ignore_ascii_case("ONAY") => true,
        Some(s) if s.eq_ignore_ascii_case("RET") => false,
        Some(other) => {
            return Err(FieldError::new(
                "permissionStatus",
                "invalid_value",
                format!("{other:?} is neither ONAY nor RET"),
            ))
        }
    };
    let changed_at = match w.unsubscribed {
        true => time(&w.unsubscribe_date).or(time(&w.iys_consent_date)),
        false => time(&w.iys_consent_date),
    };
    Ok(Member {
        member_id,
        email: email(&w.email)?,
        permission,
        unsubscribed: w.unsubscribed,
        changed_at,
        source: w.iys_consent_source,
    })
}

pub(super) fn campaign_of(w: CampaignWire) -> Result<Campaign, FieldError> {
    Ok(Campaign {
        campaign_id: id_text(&w.id).ok_or_else(|| FieldError::missing("id"))?,
        name: w.name,
        subject: w.subject,
        status: w.status,
        sent_at: time(&w.send_date),
        totals: None,
        report_final: false,
    })
}

pub(super) fn row_of(w: RowWire) -> Result<ReportRow, FieldError> {
    Ok(ReportRow {
        member_id: id_text(&w.member_id).ok_or_else(|| FieldError::missing("memberId"))?,
        email: email(&w.email)?,
        delivery: w.status,
        sent_at: time(&w.send_date),
        opened_at: time(&w.open_date),
        clicked_at: time(&w.click_date),
    })
}

/// Express's reading of a refusal: a 401 is the token; the package refusal needs a person.
pub(super) fn express_verdict(status: u16, body: &Value) -> Option<Verdict> {
    let code = body
        .get("errorCode")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("refused");
    match status {
        401 => Some(Verdict::Unauthorized(format!("Express: {message}"))),
        _ if code == NO_PACKAGE_CODE => {
            Some(Verdict::Final(format!("{NO_PACKAGE_CODE}: {message}")))
        }
        _ => None,
    }
}

pub(super) fn express_error(e: PortError) -> ExpressError {
    match e {
        PortError::Rejected(m) if m.starts_with(NO_PACKAGE_CODE) => ExpressError::NoActivePackage(
            m.trim_start_matches(NO_PACKAGE_CODE)
                .trim_start_matches(": ")
                .to_string(),
        ),
        other => ExpressError::Port(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_with_and_without_offsets() {
        assert_eq!(
            time(&Some("2026-11-26T10:00:00Z".into()))
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T10:00:00+00:00"
        );
        // Without an offset: Turkish time (UTC+3).
        assert_eq!(
            time(&Some("2026-11-26 13:00:00".into()))
                .unwrap()
                .to_rfc3339(),
            "2026-11-26T10:00:00+00:00"
        );
        assert!(time(&Some("dün".into())).is_none());
    }

    #[test]
    fn a_bad_member_is_named_and_its_neighbours_read() {
        let data = vec![
            json!({ "memberId": 7, "email": "AYSE@Ornek.com", "permissionStatus": "ONAY", "iysConsentDate": "2026-11-01 09:00:00", "iysConsentSource": "HS_WEB" }),
            json!({ "memberId": "8", "email": "not-an-address" }),
            json!({ "memberId": 9, "email": "x@y.com", "permissionStatus": "MAYBE" }),
        ];
        let read = records("members", data, 0, member_of);
        let first = read[0].as_ref().unwrap();
        assert_eq!(
            (
                first.member_id.as_str(),
                first.email.as_str(),
                first.permission
            ),
            ("7", "ayse@ornek.com", true)
        );
        assert_eq!(read[1].as_ref().unwrap_err()[0].field, "members[8].email");
        assert_eq!(
            read[2].as_ref().unwrap_err()[0].field,
            "members[9].permissionStatus"
        );
    }

    #[test]
    fn the_package_refusal_is_told_apart() {
        let body =
            json!({ "errorCode": "NoActivePackage", "message": "Aktif paketiniz bulunmamaktadır" });
        let Some(Verdict::Final(reason)) = express_verdict(403, &body) else {
            panic!()
        };
        let ExpressError::NoActivePackage(message) = express_error(PortError::Rejected(reason))
        else {
            panic!()
        };
        assert_eq!(message, "Aktif paketiniz bulunmamaktadır");
        assert!(matches!(
            express_verdict(401, &json!({})),
            Some(Verdict::Unauthorized(_))
        ));
    }
}
