//! Reading partner JSON the same way in every webhook: errors that name the exact field
//! (`entry[0].changes[0].value.leadgen_id`), ids as strings whether sent as numbers or strings,
//! and reasons cut short so a forged body never travels into a log whole.

use serde::Deserialize;

use crate::error::FieldError;
use serde_json::value::RawValue;

use crate::ingress::{Parsed, Unit};
use crate::tenant::TenantRoute;

/// Meta's ids are at most 20 digits; anything much longer is not an id (and must not be copied
/// into every unit of a forged body).
pub const MAX_ID_CHARS: usize = 64;
/// serde's messages quote the offending text; a forged body must not travel into logs whole.
pub const MAX_REASON_CHARS: usize = 300;

/// Ids are JSON strings; a number is accepted too (64-bit ids must not go through f64).
pub fn id_text(value: &serde_json::Value) -> Option<String> {
    let id = match value {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= MAX_ID_CHARS).then_some(id)
}

pub fn field_error(e: serde_path_to_error::Error<serde_json::Error>, at: &str) -> FieldError {
    let mut path = e.path().to_string();
    let inner = e.into_inner();
    let text = inner.to_string();
    let mut code = if inner.is_syntax() || inner.is_eof() {
        "invalid_json"
    } else {
        "invalid_field"
    };
    // serde reports a missing field at its parent: name the field itself.
    if let Some(name) = text
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        path = match path.as_str() {
            "." | "?" => name.to_string(),
            parent => format!("{parent}.{name}"),
        };
        code = "missing";
    }
    // `.` is the root; `?` is where a syntax error stopped the reader.
    let root = path == "." || path == "?";
    let field = match (at.is_empty(), root) {
        (true, true) => "body".to_string(),
        (true, false) => path,
        (false, true) => at.to_string(),
        (false, false) => format!("{at}.{path}"),
    };
    FieldError::new(field, code, capped(&text))
}

pub fn capped(text: &str) -> String {
    if text.chars().count() <= MAX_REASON_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_REASON_CHARS).collect();
    format!("{head}…")
}

pub fn strict<'a, T: Deserialize<'a>>(raw: &'a str, at: &str) -> Result<T, FieldError> {
    let mut de = serde_json::Deserializer::from_str(raw);
    serde_path_to_error::deserialize(&mut de).map_err(|e| field_error(e, at))
}

pub fn unparsed(path: &str, raw: &str, errors: Vec<FieldError>) -> Parsed {
    Parsed::Unparsed {
        path: path.to_string(),
        raw: raw.to_string(),
        errors,
    }
}

/// Meta's notification (`{"object", "entry": [{"id", "changes": [...]}]}`, WhatsApp and Lead
/// Ads alike) split into one unit per `entry[].changes[]` item. `route` picks each change's
/// route from its raw JSON and the entry's id; a unit's context is the entry's id. Only the
/// outer shape is checked: a unit that does not parse later is kept whole, never refused.
pub fn split_meta_changes(
    body: &[u8],
    object: &str,
    max_units: usize,
    route: impl Fn(&str, Option<&str>) -> Option<TenantRoute>,
) -> Result<Vec<Unit>, FieldError> {
    #[derive(Deserialize)]
    struct Notification<'a> {
        #[serde(default)]
        object: Option<String>,
        #[serde(borrow)]
        entry: Vec<Entry<'a>>,
    }
    #[derive(Deserialize)]
    struct Entry<'a> {
        #[serde(default)]
        id: Option<serde_json::Value>,
        #[serde(borrow, default)]
        changes: Vec<&'a RawValue>,
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| FieldError::new("body", "invalid_encoding", "body is not UTF-8 JSON"))?;
    let mut de = serde_json::Deserializer::from_str(text);
    let notification: Notification =
        serde_path_to_error::deserialize(&mut de).map_err(|e| field_error(e, ""))?;
    if notification.object.as_deref() != Some(object) {
        return Err(FieldError::new(
            "object",
            "invalid_value",
            format!("must be {object:?}"),
        ));
    }
    let parts: usize = notification.entry.iter().map(|e| e.changes.len()).sum();
    if parts > max_units {
        return Err(FieldError::new(
            "entry",
            "too_many_parts",
            format!("{parts} changes in one delivery; at most {max_units}"),
        ));
    }
    let mut units = Vec::with_capacity(parts);
    for (e, entry) in notification.entry.into_iter().enumerate() {
        let entry_id = entry.id.as_ref().and_then(id_text);
        for (c, change) in entry.changes.into_iter().enumerate() {
            let route = route(change.get(), entry_id.as_deref())
                .ok_or_else(|| FieldError::missing(format!("entry[{e}].id")))?;
            units.push(Unit {
                route,
                path: format!("entry[{e}].changes[{c}]"),
                raw: change.get().to_string(),
                context: entry_id.clone(),
            });
        }
    }
    Ok(units)
}
