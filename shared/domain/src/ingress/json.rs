//! Reading partner JSON the same way in every webhook: errors that name the exact field
//! (`entry[0].changes[0].value.leadgen_id`), ids as strings whether sent as numbers or strings,
//! and reasons cut short so a forged body never travels into a log whole.

use serde::Deserialize;

use crate::error::FieldError;
use crate::ingress::Parsed;

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
    let path = e.path().to_string();
    let inner = e.into_inner();
    let code = if inner.is_syntax() || inner.is_eof() {
        "invalid_json"
    } else {
        "invalid_field"
    };
    // `.` is the root; `?` is where a syntax error stopped the reader.
    let root = path == "." || path == "?";
    let field = match (at.is_empty(), root) {
        (true, true) => "body".to_string(),
        (true, false) => path,
        (false, true) => at.to_string(),
        (false, false) => format!("{at}.{path}"),
    };
    FieldError::new(field, code, capped(&inner.to_string()))
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
