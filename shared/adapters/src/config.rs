//! Function configuration from the environment `template.yaml` sets (and `.local/*/stack.env`
//! sets locally). Read once at init; a missing variable stops the function with its name.

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

pub fn required(name: &str) -> Result<String, ConfigError> {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ConfigError {
            name: name.into(),
            problem: "is not set".into(),
        })
}

pub fn number(name: &str, default: i64) -> Result<i64, ConfigError> {
    match env::var(name) {
        Ok(v) if !v.is_empty() => v.parse().map_err(|_| ConfigError {
            name: name.into(),
            problem: format!("is not a number: {v:?}"),
        }),
        _ => Ok(default),
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
    env::var(name).ok().filter(|v| !v.is_empty())
}
