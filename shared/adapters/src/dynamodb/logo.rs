//! The Logo sync's items in the CRM table:
//! | item            | pk                          | sk                      | gsi2 (pk / sk)                           |
//! |-----------------|-----------------------------|-------------------------|------------------------------------------|
//! | run (checkpoint)| `T#<t>#LOGO#RUN` (`runs.rs`) | `RUN`                  |                                          |
//! | finished run    | `T#<t>#LOGO#REPORT`         | `RUN#<finished>#<run>` (TTL) |                                          |
//! | invoice         | `T#<t>#CARD#<card>`         | `INVOICE#<number>`      |                                          |
//! | product         | `T#<t>#PRODUCT#<code>`      | `PRODUCT`               |                                          |
//! | card awaiting a Logo code | (the card)        |                         | `T#<t>#LOGO#PENDING` / `<created>#<card>` |
//!
//! Pages are written with BatchWriteItem (see `batch.rs`): their keys come from Logo's codes
//! and numbers, so a page written twice leaves the same items.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::Utc;
use onecrm_domain::error::PortError;
use onecrm_domain::log::Integration;
use onecrm_domain::logo::customer::LOGO;
use onecrm_domain::logo::invoice::InvoiceSummary;
use onecrm_domain::logo::ports::{CustomerWrite, InvoiceWrite, LogoStore};
use onecrm_domain::logo::run::SyncRun;
use onecrm_domain::logo::stock::Product;
use onecrm_domain::page::{Page, PageRequest};
use onecrm_domain::party::{Card, IdentityKey};
use onecrm_domain::ports::CrmRepository;
use onecrm_domain::tenant::TenantId;
use rust_decimal::Decimal;

use super::batch;
use super::identity::CLAIM;
use super::tx::{Committed, Transaction};
use super::*;

/// The sort key of an identity's claim item (see `identity.rs`).
const CLAIM_SK: &str = "CLAIM";

fn claim_item(pk: String, card_id: &str) -> Result<Item, PortError> {
    item(
        &serde_json::json!({ "card_id": card_id }),
        "identity_claim",
        &[("pk", pk), ("sk", CLAIM_SK.into())],
    )
}

impl CrmStore {
    /// A card's invoices, by number.
    pub async fn invoices_of(
        &self,
        tenant: &TenantId,
        card_id: &str,
    ) -> Result<Vec<onecrm_domain::logo::invoice::LogoInvoice>, PortError> {
        self.query_as(keys::card(tenant, card_id), "INVOICE#", false, None)
            .await
    }

    /// A product card by its Logo code.
    pub async fn product(
        &self,
        tenant: &TenantId,
        code: &str,
    ) -> Result<Option<Product>, PortError> {
        self.get(keys::product(tenant, code), "PRODUCT")
            .await?
            .map(from_item)
            .transpose()
    }
}

#[async_trait]
impl LogoStore for CrmStore {
    async fn claimed(
        &self,
        tenant: &TenantId,
        keys: &[IdentityKey],
    ) -> Result<HashMap<String, String>, PortError> {
        let prefix = keys::identities(tenant);
        let wanted = keys
            .iter()
            .map(|k| batch::key(keys::identity(tenant, k), CLAIM_SK))
            .collect();
        let found =
            batch::get_all(&self.client, &self.table, wanted, true, Some("pk, card_id")).await?;
        Ok(found
            .into_iter()
            .filter_map(|item| {
                let pk = item.get("pk")?.as_s().ok()?;
                let card = item.get("card_id")?.as_s().ok()?;
                Some((pk.strip_prefix(&prefix)?.to_string(), card.clone()))
            })
            .collect())
    }

    async fn put_customers(
        &self,
        tenant: &TenantId,
        writes: &[CustomerWrite],
    ) -> Result<(), PortError> {
        let mut items = Vec::with_capacity(writes.len() * 6);
        for write in writes {
            let card = &write.card;
            items.push(self.card_item(tenant, card)?);
            let card_ref = card.as_ref();
            for key in card.identity_keys() {
                items.push(item(
                    &card_ref,
                    "identity",
                    &[
                        ("pk", keys::identity(tenant, &key)),
                        ("sk", format!("CARD#{}", card.card_id)),
                    ],
                )?);
            }
            for key in &write.claims {
                items.push(claim_item(keys::identity(tenant, key), &card.card_id)?);
            }
        }
        batch::put_all(&self.client, &self.table, items).await
    }

    async fn put_invoices(
        &self,
        tenant: &TenantId,
        writes: &[InvoiceWrite],
    ) -> Result<(), PortError> {
        let mut items = Vec::with_capacity(writes.len());
        for write in writes {
            let invoice = &write.invoice;
            let mut stored = item(
                invoice,
                "invoice",
                &[
                    ("pk", keys::card(tenant, &write.card_id)),
                    ("sk", format!("INVOICE#{}", invoice.number)),
                ],
            )?;
            stored.insert("card_id".into(), s(write.card_id.clone()));
            items.push(stored);
        }
        batch::put_all(&self.client, &self.table, items).await
    }

    async fn put_products(&self, tenant: &TenantId, products: &[Product]) -> Result<(), PortError> {
        let items = products
            .iter()
            .map(|p| {
                item(
                    p,
                    "product",
                    &[
                        ("pk", keys::product(tenant, &p.code)),
                        ("sk", "PRODUCT".into()),
                    ],
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        batch::put_all(&self.client, &self.table, items).await
    }

    async fn customers_without_logo_code(
        &self,
        tenant: &TenantId,
        page: PageRequest,
    ) -> Result<Page<Card>, PortError> {
        let partition = keys::logo_pending(tenant);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi2")
            .key_condition_expression("gsi2pk = :pk")
            .expression_attribute_values(":pk", s(partition.clone()));
        let (items, next) = cursor::query_page(query, "gsi2pk", &partition, &page).await?;
        let cards = items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Card>, _>>()?;
        Ok(Page { items: cards, next })
    }

    async fn link_logo_code(
        &self,
        tenant: &TenantId,
        card_id: &str,
        code: &str,
    ) -> Result<(), PortError> {
        let Some(mut card) = self.card(tenant, card_id).await? else {
            return Err(PortError::Rejected(format!("card {card_id} vanished")));
        };
        if card.external_ids.get(LOGO).map(String::as_str) == Some(code) {
            return Ok(());
        }
        card.external_ids.insert(LOGO.into(), code.into());
        card.updated_at = Utc::now();
        let key = IdentityKey::External {
            system: LOGO.into(),
            id: code.into(),
        };
        let pk = keys::identity(tenant, &key);
        let mut tx = Transaction::new(&self.table);
        tx.put_with(
            CLAIM,
            claim_item(pk.clone(), card_id)?,
            Some("attribute_not_exists(pk) OR card_id = :card"),
            Some(Item::from([(":card".to_string(), s(card_id))])),
        )?;
        tx.put(
            "identity",
            item(
                &card.as_ref(),
                "identity",
                &[("pk", pk), ("sk", format!("CARD#{card_id}"))],
            )?,
            None,
        )?;
        tx.put(
            "card",
            self.card_item(tenant, &card)?,
            Some("attribute_exists(pk)"),
        )?;
        match tx.commit(&self.client).await? {
            Committed::Applied | Committed::Duplicate => Ok(()),
            Committed::ConditionFailed(label) => Err(PortError::Rejected(format!(
                "Logo code {code} for card {card_id}: {label} condition failed (another card holds the code, or the card vanished)"
            ))),
        }
    }

    async fn invoices(
        &self,
        tenant: &TenantId,
        keys: &[(String, String)],
    ) -> Result<HashMap<String, InvoiceSummary>, PortError> {
        let wanted = keys
            .iter()
            .map(|(card, number)| {
                batch::key(keys::card(tenant, card), &format!("INVOICE#{number}"))
            })
            .collect();
        // `number` and `date` are reserved words; the projection keeps the
        // answer small (no lines).
        let found = batch::get_all(
            &self.client,
            &self.table,
            wanted,
            false,
            Some("#number, #date, gross, cancelled"),
        )
        .await?;
        found
            .into_iter()
            .map(|item| {
                let invoice: InvoiceSummary = from_item(item)?;
                Ok((invoice.number.clone(), invoice))
            })
            .collect()
    }

    async fn stock(
        &self,
        tenant: &TenantId,
        codes: &[String],
    ) -> Result<HashMap<String, Decimal>, PortError> {
        let wanted = codes
            .iter()
            .map(|c| batch::key(keys::product(tenant, c), "PRODUCT"))
            .collect();
        let found = batch::get_all(
            &self.client,
            &self.table,
            wanted,
            false,
            Some("code, on_hand"),
        )
        .await?;
        Ok(found
            .into_iter()
            .filter_map(|item| {
                let code = item.get("code")?.as_s().ok()?.clone();
                let on_hand = item.get("on_hand")?.as_s().ok()?.parse().ok()?;
                Some((code, on_hand))
            })
            .collect())
    }

    async fn save_report(&self, tenant: &TenantId, run: &SyncRun) -> Result<(), PortError> {
        let finished = run.finished_at.unwrap_or_else(Utc::now);
        self.save_finished_run(tenant, Integration::Logo, (&run.run_id, finished), run)
            .await
    }

    async fn reports(&self, tenant: &TenantId, limit: usize) -> Result<Vec<SyncRun>, PortError> {
        self.finished_runs(tenant, Integration::Logo, limit).await
    }
}
