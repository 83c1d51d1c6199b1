//! Authenticators: how each partner proves a request is its own. Pure checks; the pipeline
//! fetches the secret they name.

use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::ingress::InboundRequest;
use crate::meta::{self, SignatureError};
use crate::ports::Secret;
use crate::tenant::{app_secret_name, secret_name, RouteTarget};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub code: &'static str,
    pub message: String,
    /// The header (or parameter) that carries the credential.
    pub field: &'static str,
    /// A mismatch may mean the cached secret was rotated: worth one fresh read.
    pub stale_secret_possible: bool,
}

impl AuthError {
    fn new(code: &'static str, message: impl Into<String>, field: &'static str) -> Self {
        Self {
            code,
            message: message.into(),
            field,
            stale_secret_possible: false,
        }
    }
}

pub trait Authenticator: Send + Sync {
    /// The secret that checks requests arriving for `target`; `None` when the route itself is
    /// the credential (a hashed API key or token matched by the lookup).
    fn secret_name(&self, target: &RouteTarget) -> Option<String>;
    fn verify(
        &self,
        request: &InboundRequest<'_>,
        target: &RouteTarget,
        secret: Option<&Secret>,
    ) -> Result<(), AuthError>;
}

/// A secret stored as JSON with one named field, e.g. `{"app_secret": "..."}`.
fn secret_field(secret: Option<&Secret>, field: &str) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Any(serde_json::Map<String, serde_json::Value>);
    let malformed = || {
        AuthError::new(
            "secret_malformed",
            format!("the stored credential has no {field:?}"),
            "secret",
        )
    };
    let secret = secret.ok_or_else(malformed)?;
    let Any(map) = serde_json::from_str(secret.expose()).map_err(|_| malformed())?;
    map.get(field)
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or_else(malformed)
}

/// Meta (WhatsApp Cloud API, Lead Ads): `X-Hub-Signature-256` with the App Secret of the app
/// named on the route.
pub struct MetaSignature {
    pub app_secret_prefix: String,
}

impl Authenticator for MetaSignature {
    fn secret_name(&self, target: &RouteTarget) -> Option<String> {
        target
            .app_id
            .as_deref()
            .map(|app| app_secret_name(&self.app_secret_prefix, "meta", app))
    }

    fn verify(
        &self,
        request: &InboundRequest<'_>,
        target: &RouteTarget,
        secret: Option<&Secret>,
    ) -> Result<(), AuthError> {
        if target.app_id.is_none() {
            return Err(AuthError::new(
                "route_without_app",
                "the route names no Meta app",
                "route",
            ));
        }
        let app_secret = secret_field(secret, "app_secret")?;
        meta::verify_signature(
            app_secret.as_bytes(),
            request.body,
            request.header(meta::SIGNATURE_HEADER),
        )
        .map_err(|e| AuthError {
            code: e.code(),
            message: e.to_string(),
            field: "X-Hub-Signature-256",
            stale_secret_possible: e == SignatureError::Mismatch,
        })
    }
}

pub const INSURUP_SIGNATURE_HEADER: &str = "x-webhook-signature";
pub const INSURUP_DELIVERY_HEADER: &str = "x-webhook-delivery";

/// InsurUp: `x-webhook-signature` = lowercase hex HMAC-SHA256(tenant's webhook secret, raw body),
/// no prefix (contracts.md §3.3); `x-webhook-delivery` names the delivery for dedupe.
pub struct InsurUpSignature {
    pub tenant_secret_prefix: String,
}

impl Authenticator for InsurUpSignature {
    fn secret_name(&self, target: &RouteTarget) -> Option<String> {
        Some(secret_name(
            &self.tenant_secret_prefix,
            &target.tenant_id,
            "insurup",
        ))
    }

    fn verify(
        &self,
        request: &InboundRequest<'_>,
        _target: &RouteTarget,
        secret: Option<&Secret>,
    ) -> Result<(), AuthError> {
        let field = "x-webhook-signature";
        let header = request
            .header(INSURUP_SIGNATURE_HEADER)
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                AuthError::new("signature_missing", "x-webhook-signature is missing", field)
            })?;
        if request
            .header(INSURUP_DELIVERY_HEADER)
            .is_none_or(|d| d.trim().is_empty())
        {
            return Err(AuthError::new(
                "delivery_id_missing",
                "x-webhook-delivery is missing",
                "x-webhook-delivery",
            ));
        }
        let expected = hex::decode(header.to_ascii_lowercase())
            .ok()
            .filter(|d| d.len() == 32)
            .ok_or_else(|| {
                AuthError::new(
                    "signature_malformed",
                    "x-webhook-signature is not 64 hex digits",
                    field,
                )
            })?;
        let key = secret_field(secret, "webhook_secret")?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"));
        mac.update(request.body);
        // verify_slice compares in constant time.
        mac.verify_slice(&expected).map_err(|_| AuthError {
            stale_secret_possible: true,
            ..AuthError::new(
                "signature_invalid",
                "x-webhook-signature does not match the body",
                field,
            )
        })
    }
}

/// Web forms and PBXs: the route was found by the SHA-256 of the presented API key or token,
/// so finding it is the proof; a PBX route may also restrict source addresses.
pub struct RouteCredential;

impl Authenticator for RouteCredential {
    fn secret_name(&self, _target: &RouteTarget) -> Option<String> {
        None
    }

    fn verify(
        &self,
        request: &InboundRequest<'_>,
        target: &RouteTarget,
        _secret: Option<&Secret>,
    ) -> Result<(), AuthError> {
        if target.allowed_sources.is_empty() {
            return Ok(());
        }
        let source = request.source_ip.and_then(|ip| ip.parse::<IpAddr>().ok());
        match source {
            Some(ip) if target.allowed_sources.iter().any(|a| source_allowed(a, ip)) => Ok(()),
            _ => Err(AuthError::new(
                "source_not_allowed",
                format!(
                    "source address {} is not on the allow-list",
                    request.source_ip.unwrap_or("unknown")
                ),
                "source_ip",
            )),
        }
    }
}

/// `allowed` is an address (`85.111.2.3`) or a CIDR range (`85.111.2.0/24`, `2a00::/16`).
pub fn source_allowed(allowed: &str, ip: IpAddr) -> bool {
    let (net, bits) = match allowed.split_once('/') {
        Some((net, bits)) => (net, bits.parse::<u32>().ok()),
        None => (allowed, None),
    };
    let Ok(net) = net.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => prefix_match(
            u32::from(n).into(),
            u32::from(i).into(),
            bits.unwrap_or(32),
            32,
        ),
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            prefix_match(u128::from(n), u128::from(i), bits.unwrap_or(128), 128)
        }
        _ => false,
    }
}

fn prefix_match(net: u128, ip: u128, bits: u32, width: u32) -> bool {
    if bits > width {
        return false;
    }
    let shift = width - bits;
    shift >= 128 || (net >> shift) == (ip >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::TenantId;

    fn target() -> RouteTarget {
        RouteTarget::tenant(TenantId::parse("demo").unwrap()).with_app("1234")
    }

    fn request<'a>(body: &'a [u8], headers: &'a [(&'a str, &'a str)]) -> InboundRequest<'a> {
        InboundRequest {
            body,
            headers,
            source_ip: Some("85.111.2.3"),
            path_token: None,
        }
    }

    #[test]
    fn meta_checks_the_apps_secret_and_flags_a_mismatch_as_maybe_rotated() {
        let auth = MetaSignature {
            app_secret_prefix: "onecrm/apps/".into(),
        };
        assert_eq!(
            auth.secret_name(&target()).as_deref(),
            Some("onecrm/apps/meta/1234")
        );
        let secret = Secret::new(r#"{"app_secret":"s3"}"#);
        let good = meta::sign(b"s3", b"{}");
        let headers = [("x-hub-signature-256", good.as_str())];
        assert_eq!(
            auth.verify(&request(b"{}", &headers), &target(), Some(&secret)),
            Ok(())
        );
        let err = auth
            .verify(&request(b"{ }", &headers), &target(), Some(&secret))
            .unwrap_err();
        assert_eq!(err.code, "signature_invalid");
        assert!(err.stale_secret_possible);
        let missing = auth
            .verify(&request(b"{}", &[]), &target(), Some(&secret))
            .unwrap_err();
        assert_eq!(missing.code, "signature_missing");
        assert!(!missing.stale_secret_possible);
    }

    #[test]
    fn insurup_is_bare_lowercase_hex_hmac_with_a_delivery_id() {
        let auth = InsurUpSignature {
            tenant_secret_prefix: "onecrm/tenants/".into(),
        };
        let secret = Secret::new(r#"{"webhook_secret":"whsec"}"#);
        let body = br#"{"$event":"policy.created"}"#;
        let signature = meta::sign(b"whsec", body)["sha256=".len()..].to_string();
        let ok = [
            ("x-webhook-signature", signature.as_str()),
            ("x-webhook-delivery", "d-1"),
        ];
        assert_eq!(
            auth.verify(&request(body, &ok), &target(), Some(&secret)),
            Ok(())
        );
        let upper = signature.to_uppercase();
        let upper = [
            ("x-webhook-signature", upper.as_str()),
            ("x-webhook-delivery", "d-1"),
        ];
        assert_eq!(
            auth.verify(&request(body, &upper), &target(), Some(&secret)),
            Ok(())
        );
        let prefixed = format!("sha256={signature}");
        let prefixed = [
            ("x-webhook-signature", prefixed.as_str()),
            ("x-webhook-delivery", "d-1"),
        ];
        assert_eq!(
            auth.verify(&request(body, &prefixed), &target(), Some(&secret))
                .unwrap_err()
                .code,
            "signature_malformed"
        );
        let no_delivery = [("x-webhook-signature", signature.as_str())];
        assert_eq!(
            auth.verify(&request(body, &no_delivery), &target(), Some(&secret))
                .unwrap_err()
                .code,
            "delivery_id_missing"
        );
        assert_eq!(
            auth.verify(&request(b"{}", &ok), &target(), Some(&secret))
                .unwrap_err()
                .code,
            "signature_invalid"
        );
    }

    #[test]
    fn route_credentials_honour_the_source_allow_list() {
        let mut t = target();
        assert_eq!(RouteCredential.verify(&request(b"", &[]), &t, None), Ok(()));
        t.allowed_sources = vec!["85.111.2.0/24".into(), "10.0.0.1".into()];
        assert_eq!(RouteCredential.verify(&request(b"", &[]), &t, None), Ok(()));
        t.allowed_sources = vec!["85.111.3.0/24".into()];
        assert_eq!(
            RouteCredential
                .verify(&request(b"", &[]), &t, None)
                .unwrap_err()
                .code,
            "source_not_allowed"
        );
        assert!(source_allowed("2a00::/16", "2a00:1::5".parse().unwrap()));
        assert!(!source_allowed("2a00::/16", "85.1.1.1".parse().unwrap()));
        assert!(source_allowed("0.0.0.0/0", "85.1.1.1".parse().unwrap()));
        assert!(!source_allowed("garbage", "85.1.1.1".parse().unwrap()));
    }
}
