//! The CRM opportunity's Karel link: `T#<t>#KAREL#OPP#<opportunity id>` / `LINK`. A claim is a
//! conditional put (only if no link exists); a save only replaces the claim or an older
//! version; a release deletes only a claim.

use async_trait::async_trait;
use onecrm_domain::error::PortError;
use onecrm_domain::karel::worker::{KarelLink, KarelLinks};
use onecrm_domain::tenant::TenantId;

use super::*;

fn link_pk(t: &TenantId, opportunity_id: &str) -> String {
    format!("T#{t}#KAREL#OPP#{opportunity_id}")
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(error: &E) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

impl CrmStore {
    async fn put_link(
        &self,
        tenant: &TenantId,
        link: &KarelLink,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, PortError> {
        let item = item(
            link,
            "karel_link",
            &[
                ("pk", link_pk(tenant, &link.opportunity_id)),
                ("sk", "LINK".into()),
            ],
        )?;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        // `state` and `version` may be reserved words: always by name.
        for name in ["state", "version"] {
            if condition.contains(&format!("#{name}")) {
                put = put.expression_attribute_names(format!("#{name}"), name);
            }
        }
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(port_error("PutItem", e)),
        }
    }
}

#[async_trait]
impl KarelLinks for CrmStore {
    async fn link(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
    ) -> Result<Option<KarelLink>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(tenant, opportunity_id)))
            .key("sk", s("LINK"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn claim(&self, tenant: &TenantId, link: &KarelLink) -> Result<bool, PortError> {
        self.put_link(tenant, link, "attribute_not_exists(pk)", vec![])
            .await
    }

    async fn save(&self, tenant: &TenantId, link: &KarelLink) -> Result<bool, PortError> {
        self.put_link(
            tenant,
            link,
            "attribute_not_exists(pk) OR #state = :creating OR #version < :version",
            vec![(":creating", s("creating")), (":version", n(link.version))],
        )
        .await
    }

    async fn lease(
        &self,
        tenant: &TenantId,
        opportunity_id: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, PortError> {
        let now = until - chrono::Duration::seconds(onecrm_domain::karel::worker::LEASE_SECONDS);
        let leased = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(tenant, opportunity_id)))
            .key("sk", s("LINK"))
            .update_expression("SET lease_until = :until")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)")
            .expression_attribute_values(":until", n(until.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()))
            .send()
            .await;
        match leased {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(false),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn unlease(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError> {
        let removed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(tenant, opportunity_id)))
            .key("sk", s("LINK"))
            .update_expression("REMOVE lease_until")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match removed {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }

    async fn release(&self, tenant: &TenantId, opportunity_id: &str) -> Result<(), PortError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(link_pk(tenant, opportunity_id)))
            .key("sk", s("LINK"))
            .condition_expression("#state = :creating")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":creating", s("creating"))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => Ok(()),
            Err(e) => Err(port_error("DeleteItem", e)),
        }
    }
}
