//! Meta webhooks (WhatsApp Cloud API now, Lead Ads next): the verification handshake and the
//! `X-Hub-Signature-256` check, implemented once for both, and Graph's error body (Lead Ads
//! reads, WhatsApp sends).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not 'sha256=<64 hex digits>'")]
    Malformed,
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_invalid",
        }
    }
}

/// Checks `sha256=<hex>` = HMAC-SHA256(app secret, raw body) in constant time. The body must be
/// the exact bytes received (after API Gateway's base64 decoding), never re-serialized JSON.
pub fn verify_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .or_else(|| header.strip_prefix("SHA256="))
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = HmacSha256::new_from_slice(app_secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The header value Meta would send for `body` (tests, sample events, the local sandbox).
pub fn sign(app_secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(app_secret)
        .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The GET handshake's query parameters (`hub.mode`, `hub.verify_token`, `hub.challenge`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeQuery {
    pub mode: Option<String>,
    pub verify_token: Option<String>,
    pub challenge: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("hub.mode must be 'subscribe'")]
    WrongMode,
    #[error("hub.challenge is missing")]
    MissingChallenge,
    #[error("hub.verify_token does not match")]
    TokenMismatch,
}

impl HandshakeError {
    pub fn code(&self) -> &'static str {
        match self {
            HandshakeError::WrongMode => "handshake_wrong_mode",
            HandshakeError::MissingChallenge => "handshake_missing_challenge",
            HandshakeError::TokenMismatch => "handshake_token_mismatch",
        }
    }
}

/// Returns the challenge to echo (raw, no JSON) when the handshake is valid.
pub fn check_handshake<'q>(
    query: &'q HandshakeQuery,
    expected_token: &str,
) -> Result<&'q str, HandshakeError> {
    if query.mode.as_deref() != Some("subscribe") {
        return Err(HandshakeError::WrongMode);
    }
    let token = query.verify_token.as_deref().unwrap_or("");
    if !bool::from(token.as_bytes().ct_eq(expected_token.as_bytes())) || expected_token.is_empty() {
        return Err(HandshakeError::TokenMismatch);
    }
    query
        .challenge
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(HandshakeError::MissingChallenge)
}

/// Graph's `{"error": {...}}` ([contracts §1.9, §2.7]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    /// WhatsApp's `error_data.details`: what exactly was wrong.
    #[serde(default)]
    pub error_data: Option<GraphErrorData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GraphErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

impl GraphError {
    /// Reads `{"error": {...}}` from an answer body, if it is one.
    pub fn from_body(body: &serde_json::Value) -> Option<GraphError> {
        serde_json::from_value(body.get("error")?.clone()).ok()
    }

    /// `Graph 190/460: Error validating access token…` for the log.
    pub fn describe(&self) -> String {
        let code = match (self.code, self.error_subcode) {
            (Some(c), Some(s)) => format!("{c}/{s}"),
            (Some(c), None) => c.to_string(),
            _ => "?".into(),
        };
        format!("Graph {code}: {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

    #[test]
    fn accepts_its_own_signature_and_rejects_any_change() {
        let header = sign(b"demo-app-secret", BODY);
        assert_eq!(
            verify_signature(b"demo-app-secret", BODY, Some(&header)),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"other-secret", BODY, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = BODY.to_vec();
        tampered[3] ^= 1;
        assert_eq!(
            verify_signature(b"demo-app-secret", &tampered, Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn names_what_is_wrong_with_the_header() {
        assert_eq!(
            verify_signature(b"s", BODY, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(b"s", BODY, Some("  ")),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(b"s", BODY, Some("sha1=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(b"s", BODY, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(b"s", BODY, Some("sha256=abcd")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn known_vector_matches_meta_convention() {
        // HMAC-SHA256("demo-app-secret", "{}") in lower-case hex, as Meta sends it.
        let header = sign(b"demo-app-secret", b"{}");
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(header, header.to_lowercase());
    }

    #[test]
    fn handshake_echoes_the_raw_challenge_only_for_the_right_token() {
        let q = HandshakeQuery {
            mode: Some("subscribe".into()),
            verify_token: Some("tok".into()),
            challenge: Some("1158201444".into()),
        };
        assert_eq!(check_handshake(&q, "tok"), Ok("1158201444"));
        assert_eq!(
            check_handshake(&q, "other"),
            Err(HandshakeError::TokenMismatch)
        );
        assert_eq!(check_handshake(&q, ""), Err(HandshakeError::TokenMismatch));
        let wrong_mode = HandshakeQuery {
            mode: Some("unsubscribe".into()),
            ..q.clone()
        };
        assert_eq!(
            check_handshake(&wrong_mode, "tok"),
            Err(HandshakeError::WrongMode)
        );
        let no_challenge = HandshakeQuery {
            challenge: None,
            ..q
        };
        assert_eq!(
            check_handshake(&no_challenge, "tok"),
            Err(HandshakeError::MissingChallenge)
        );
    }
}
