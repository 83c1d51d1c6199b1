//! Function configuration from the environment `template.yaml` sets (and `.local/*/stack.env`
//! sets locally). Read once at init; a missing variable stops the function with its name.
//!
//! Locally every function shares one environment file, so a variable one function sets
//! differently from another is written scoped to its function: `<FUNCTION>__<NAME>` (function
//! name upper-cased, `-` as `_`), and the function whose `AWS_LAMBDA_FUNCTION_NAME` matches
//! reads it first. On AWS each function has its own environment and no scoped names exist.

use std::env;

#[derive(Debug, Clone)]
pub struct Settings {
    pub crm_table: String,
    pub log_table: String,
    pub log_retention_days: i64,
    pub tenant_secret_prefix: String,
    /// Partner apps' secrets (`<prefix>meta/<app id>`): shared by the tenants of one app.
    pub app_secret_prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name} {problem}")]
pub struct ConfigError {
    pub name: String,
    pub problem: String,
}

/// `<FUNCTION>__<NAME>` for `function`.
pub fn scoped_name(function: &str, name: &str) -> String {
    let function: String = function
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{function}__{name}")
}

/// The variable as this function sees it: its scoped value first, then the shared one.
fn lookup_in(get: impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    let scoped = get("AWS_LAMBDA_FUNCTION_NAME").and_then(|f| get(&scoped_name(&f, name)));
    scoped.or_else(|| get(name)).filter(|v| !v.is_empty())
}

fn lookup(name: &str) -> Option<String> {
    lookup_in(|n| env::var(n).ok(), name)
}

pub fn required(name: &str) -> Result<String, ConfigError> {
    lookup(name).ok_or_else(|| ConfigError {
        name: name.into(),
        problem: "is not set".into(),
    })
}

pub fn number(name: &str, default: i64) -> Result<i64, ConfigError> {
    match lookup(name) {
        Some(v) => v.parse().map_err(|_| ConfigError {
            name: name.into(),
            problem: format!("is not a number: {v:?}"),
        }),
        None => Ok(default),
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            crm_table: required("CRM_TABLE")?,
            log_table: required("LOG_TABLE")?,
            log_retention_days: number("LOG_RETENTION_DAYS", 90)?,
            tenant_secret_prefix: required("TENANT_SECRET_PREFIX")?,
            app_secret_prefix: required("APP_SECRET_PREFIX")?,
        })
    }
}

/// An optional variable: `None` when unset or empty.
pub fn optional(name: &str) -> Option<String> {
    lookup(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn a_functions_scoped_variable_wins_over_the_shared_one() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("AWS_LAMBDA_FUNCTION_NAME", "whatsapp-worker"),
            ("MAX_RECEIVE_COUNT", "5"),
            ("WHATSAPP_WORKER__MAX_RECEIVE_COUNT", "3"),
            ("WHATSAPP_INBOUND__MAX_RECEIVE_COUNT", "9"),
            ("EMPTY", ""),
        ]);
        let get = |n: &str| env.get(n).map(|v| v.to_string());
        assert_eq!(lookup_in(get, "MAX_RECEIVE_COUNT").as_deref(), Some("3"));
        assert_eq!(lookup_in(get, "EMPTY"), None);
        let shared = |n: &str| {
            if n == "AWS_LAMBDA_FUNCTION_NAME" {
                Some("onecrm-prod-whatsapp-worker".into())
            } else {
                get(n)
            }
        };
        assert_eq!(
            lookup_in(shared, "MAX_RECEIVE_COUNT").as_deref(),
            Some("5"),
            "on AWS: no scoped names"
        );
        assert_eq!(scoped_name("whatsapp-inbound", "X"), "WHATSAPP_INBOUND__X");
    }
}
