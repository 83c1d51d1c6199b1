//! Delivery statuses of the WhatsApp messages we sent.

use aws_sdk_dynamodb::types::AttributeValue;
use onecrm_domain::error::PortError;
use onecrm_domain::ports::StatusOutcome;
use onecrm_domain::tenant::TenantId;
use onecrm_domain::time::to_sortable;
use onecrm_domain::whatsapp::status::{DeliveryStatus, MessageStatusUpdate};

use super::*;

impl CrmStore {
    /// One conditional update: the status moves only up its ladder (see
    /// [`DeliveryStatus::rank`]); an equal or lower rank fails the condition and changes nothing.
    pub(super) async fn apply_status(
        &self,
        tenant: &TenantId,
        update: &MessageStatusUpdate,
    ) -> Result<StatusOutcome, PortError> {
        let at = to_sortable(&update.at);
        let mut expression = vec![
            "entity = :entity",
            "wamid = :wamid",
            "#status = :status",
            "status_rank = :rank",
            "status_at = :at",
            "recipient = if_not_exists(recipient, :recipient)",
        ];
        let stamp = match update.status {
            DeliveryStatus::Sent => Some("sent_at = :at"),
            DeliveryStatus::Delivered => Some("delivered_at = :at"),
            DeliveryStatus::Read | DeliveryStatus::Played => {
                Some("read_at = if_not_exists(read_at, :at)")
            }
            DeliveryStatus::Failed => Some("failed_at = :at"),
            DeliveryStatus::Other(_) => None,
        };
        expression.extend(stamp);
        let error = update
            .errors
            .first()
            .filter(|_| update.status == DeliveryStatus::Failed);
        if error.is_some() {
            expression.extend([
                "error_code = :code",
                "error_title = :title",
                "error_details = :details",
            ]);
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(keys::wa_message(tenant, &update.wamid)))
            .key("sk", s("WAMSG"))
            .update_expression(format!("SET {}", expression.join(", ")))
            .condition_expression("attribute_not_exists(status_rank) OR status_rank < :rank")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":entity", s("wa_message"))
            .expression_attribute_values(":wamid", s(update.wamid.clone()))
            .expression_attribute_values(":status", s(update.status.as_str()))
            .expression_attribute_values(":rank", n(update.status.rank()))
            .expression_attribute_values(":at", s(at))
            .expression_attribute_values(
                ":recipient",
                update
                    .recipient
                    .clone()
                    .map(s)
                    .unwrap_or(AttributeValue::Null(true)),
            );
        if let Some(error) = error {
            request = request
                .expression_attribute_values(":code", n(error.code))
                .expression_attribute_values(
                    ":title",
                    error
                        .title
                        .clone()
                        .map(s)
                        .unwrap_or(AttributeValue::Null(true)),
                )
                .expression_attribute_values(
                    ":details",
                    error
                        .details
                        .clone()
                        .map(s)
                        .unwrap_or(AttributeValue::Null(true)),
                );
        }
        match request.send().await {
            Ok(_) => Ok(StatusOutcome::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(StatusOutcome::Stale)
            }
            Err(e) => Err(port_error("UpdateItem", e)),
        }
    }
}
