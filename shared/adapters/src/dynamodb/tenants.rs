//! Tenants and their routes in the CRM table, behind bounded in-process caches.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::ports::TenantDirectory;
use onecrm_domain::tenant::{RouteTarget, TenantConfig, TenantId, TenantRoute};

use super::tx::{Committed, Transaction};
use super::*;
use crate::cache::TtlCache;

/// Tenant settings change rarely; webhooks must answer fast. Unknown routes are cached
/// briefly so a newly added tenant starts working within seconds.
const TENANT_CACHE_TTL: Duration = Duration::from_secs(60);
const UNKNOWN_ROUTE_CACHE_TTL: Duration = Duration::from_secs(10);
/// Bounds: a forged body naming endless ids cannot grow the cache past these.
const ROUTE_CACHE_CAPACITY: usize = 10_000;
const CONFIG_CACHE_CAPACITY: usize = 1_000;

pub(super) struct TenantCache {
    routes: TtlCache<String, Option<RouteTarget>>,
    configs: TtlCache<TenantId, TenantConfig>,
}

impl Default for TenantCache {
    fn default() -> Self {
        Self {
            routes: TtlCache::new(ROUTE_CACHE_CAPACITY),
            configs: TtlCache::new(CONFIG_CACHE_CAPACITY),
        }
    }
}

impl CrmStore {
    /// Adds a tenant with its routing keys (tenant onboarding; see `onecrm-admin`). Each
    /// route item holds its [`RouteTarget`]: the tenant and the app that signs its deliveries.
    pub async fn put_tenant(
        &self,
        config: &TenantConfig,
        routes: &[TenantRoute],
    ) -> Result<(), PortError> {
        let mut tx = Transaction::new(&self.table);
        let pk = keys::tenant_config(&config.tenant_id);
        let keys = [("pk", pk.clone()), ("sk", "CONFIG".to_string())];
        tx.put("tenant", item(config, "tenant", &keys)?, None)?;
        // One marker per nightly job the tenant is connected to, in a sparse index the
        // schedule's fan-out reads (a tenant may have several).
        let integrations = &config.integrations;
        for (integration, connected) in [
            (Integration::Logo, integrations.logo.is_some()),
            (Integration::Express, integrations.express.is_some()),
        ] {
            let sk = keys::connected(integration);
            if !connected {
                tx.delete("connection marker", pk.clone(), sk)?;
                continue;
            }
            let marker = item(
                &serde_json::json!({ "tenant_id": config.tenant_id }),
                "connection",
                &[
                    ("pk", pk.clone()),
                    ("sk", sk.clone()),
                    ("gsi1pk", sk),
                    ("gsi1sk", config.tenant_id.to_string()),
                ],
            )?;
            tx.put("connection marker", marker, None)?;
        }
        for route in routes {
            let mut route_item = item(&config.route_target(route), "route", &[])?;
            route_item.insert("pk".into(), s(keys::route(route)));
            route_item.insert("sk".into(), s("ROUTE"));
            if route.is_shared() {
                tx.put("shared route", route_item, None)?;
                continue;
            }
            // A route may be re-pointed only by the tenant that owns it.
            let values = HashMap::from([(":tenant".to_string(), s(config.tenant_id.as_str()))]);
            tx.put_with(
                "route",
                route_item,
                Some("attribute_not_exists(pk) OR tenant_id = :tenant"),
                Some(values),
            )?;
        }
        match tx.commit(&self.client).await? {
            Committed::Applied | Committed::Duplicate => {}
            Committed::ConditionFailed(_) => {
                return Err(PortError::Rejected(
                    "a route already belongs to another tenant".into(),
                ))
            }
        }
        self.cache.routes.clear();
        self.cache.configs.remove(&config.tenant_id);
        Ok(())
    }

    /// Removes one of the tenant's routes (a revoked web-form key); `false` if it was not the
    /// tenant's. Warm functions forget it within their route cache's minute.
    pub async fn remove_route(
        &self,
        tenant: &TenantId,
        route: &TenantRoute,
    ) -> Result<bool, PortError> {
        let removed = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(keys::route(route)))
            .key("sk", s("ROUTE"))
            .condition_expression("tenant_id = :tenant")
            .expression_attribute_values(":tenant", s(tenant.as_str()))
            .send()
            .await;
        self.cache.routes.remove(&route.key());
        match removed {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(port_error("DeleteItem", e)),
        }
    }
}

#[async_trait]
impl TenantDirectory for CrmStore {
    async fn connected(&self, integration: Integration) -> Result<Vec<TenantId>, PortError> {
        let mut tenants = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(keys::connected(integration)))
                .projection_expression("gsi1sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| port_error("Query", e))?;
            tenants.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| TenantId::parse(i.get("gsi1sk")?.as_s().ok()?).ok()),
            );
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(tenants);
            }
        }
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantConfig>, PortError> {
        if let Some(hit) = self.cache.configs.get(id, TENANT_CACHE_TTL) {
            return Ok(Some(hit));
        }
        let Some(found) = self.get(keys::tenant_config(id), "CONFIG").await? else {
            return Ok(None);
        };
        let config: TenantConfig = from_item(found)?;
        self.cache.configs.insert(id.clone(), config.clone());
        Ok(Some(config))
    }

    async fn resolve(&self, route: &TenantRoute) -> Result<Option<RouteTarget>, PortError> {
        let key = route.key();
        if let Some((age, hit)) = self.cache.routes.get_with_age(&key) {
            let ttl = if hit.is_some() {
                TENANT_CACHE_TTL
            } else {
                UNKNOWN_ROUTE_CACHE_TTL
            };
            if age < ttl {
                return Ok(hit);
            }
        }
        let target = match self.get(keys::route(route), "ROUTE").await? {
            Some(found) => Some(from_item::<RouteTarget>(found).map_err(|e| {
                PortError::Rejected(format!("route {key} is not a route target: {e}"))
            })?),
            None => None,
        };
        self.cache.routes.insert(key, target.clone());
        Ok(target)
    }

    async fn resolve_fresh(&self, route: &TenantRoute) -> Result<Option<RouteTarget>, PortError> {
        self.cache.routes.remove(&route.key());
        self.resolve(route).await
    }
}
