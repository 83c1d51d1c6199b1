//! "How many leads did each campaign bring, and how many are customers now?" Per tenant and
//! date range (lead creation), by source, utm_source, utm_medium, utm_campaign and Meta
//! campaign. A lead counts as a customer now when its status is `converted` or one of its
//! phones or e-mails now belongs to a customer card.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::PortError;
use crate::identity::CardMatcher;
use crate::page::collect_all;
use crate::party::{Card, CardKind, LeadSource, LeadStatus};
use crate::ports::CrmRepository;
use crate::tenant::TenantId;

/// Leads without a tag are counted under this value, so every column sums to the total.
pub const UNTAGGED: &str = "(none)";
const SOURCES: [LeadSource; 5] = [
    LeadSource::WhatsApp,
    LeadSource::MetaLeadAds,
    LeadSource::WebForm,
    LeadSource::Phone,
    LeadSource::Other,
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub leads: u64,
    pub customers: u64,
}

impl Counts {
    fn add(&mut self, customer: bool) {
        self.leads += 1;
        self.customers += u64::from(customer);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttributionReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: Counts,
    pub by_source: BTreeMap<String, Counts>,
    pub by_utm_source: BTreeMap<String, Counts>,
    pub by_utm_medium: BTreeMap<String, Counts>,
    pub by_utm_campaign: BTreeMap<String, Counts>,
    pub by_meta_campaign: BTreeMap<String, Counts>,
}

/// Counts leads (each with whether it is a customer now) into the report's columns.
pub fn aggregate(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    leads: &[(Card, bool)],
) -> AttributionReport {
    let mut report = AttributionReport {
        from,
        to,
        ..Default::default()
    };
    let tag = |value: Option<&String>| {
        value
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .unwrap_or(UNTAGGED)
            .to_string()
    };
    for (card, customer) in leads {
        let Some(lead) = &card.lead else { continue };
        report.total.add(*customer);
        let count = |column: &mut BTreeMap<String, Counts>, value: String| {
            column.entry(value).or_default().add(*customer)
        };
        count(&mut report.by_source, lead.source.as_str().to_string());
        count(&mut report.by_utm_source, tag(lead.utm.source.as_ref()));
        count(&mut report.by_utm_medium, tag(lead.utm.medium.as_ref()));
        count(&mut report.by_utm_campaign, tag(lead.utm.campaign.as_ref()));
        if lead.source == LeadSource::MetaLeadAds {
            let campaign = lead
                .campaign
                .as_ref()
                .and_then(|c| c.campaign_name.as_ref().or(c.campaign_id.as_ref()));
            count(&mut report.by_meta_campaign, tag(campaign));
        }
    }
    report
}

/// Reads every lead created in `[from, to)` (all sources, page by page) and whether each is a
/// customer now, then aggregates.
pub async fn attribution_report(
    repo: Arc<dyn CrmRepository>,
    tenant: &TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<AttributionReport, PortError> {
    let matcher = CardMatcher::new(repo.clone());
    let mut leads = Vec::new();
    for source in SOURCES {
        let cards = collect_all(200, |page| {
            repo.leads_by_source(tenant, source, from, to, page)
        })
        .await?;
        for card in cards {
            let converted = card
                .lead
                .as_ref()
                .is_some_and(|l| l.status == LeadStatus::Converted);
            let customer = converted
                || matcher
                    .find(tenant, &card.identity_keys())
                    .await?
                    .candidates
                    .iter()
                    .any(|c| c.kind == CardKind::Customer);
            leads.push((card, customer));
        }
    }
    Ok(aggregate(from, to, &leads))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::AdCampaign;
    use crate::party::{LeadDetails, Touch, Utm};
    use crate::phone::PhoneNumber;
    use crate::ports::CrmRepository;
    use crate::testing::MemoryCrm;
    use crate::timeline::Channel;

    fn lead(id: &str, phone: &str, source: LeadSource, utm: Utm, campaign: Option<&str>) -> Card {
        let now: DateTime<Utc> = "2026-11-10T10:00:00Z".parse().unwrap();
        let touch = Touch {
            channel: Channel::WebForm,
            at: now,
            external_id: None,
            referral: None,
            utm: None,
        };
        let mut card = Card::person_customer(id, id, vec![PhoneNumber::parse(phone).unwrap()], now);
        card.kind = CardKind::Lead;
        card.customer = None;
        card.lead = Some(LeadDetails {
            source,
            status: LeadStatus::New,
            utm,
            campaign: campaign.map(|name| AdCampaign {
                campaign_name: Some(name.into()),
                ..Default::default()
            }),
            first_touch: touch.clone(),
            last_touch: touch,
        });
        card
    }

    fn utm(source: &str, medium: &str, campaign: &str) -> Utm {
        Utm {
            source: Some(source.into()),
            medium: Some(medium.into()),
            campaign: Some(campaign.into()),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn leads_are_counted_per_tag_and_customers_found_by_their_keys() {
        let crm = Arc::new(MemoryCrm::default());
        let t = TenantId::parse("demo").unwrap();
        for card in [
            lead(
                "l1",
                "05331111111",
                LeadSource::MetaLeadAds,
                utm("instagram", "paid_social", "Kasım Kasko"),
                Some("Kasım Kasko"),
            ),
            lead(
                "l2",
                "05332222222",
                LeadSource::MetaLeadAds,
                utm("facebook", "paid_social", "Kasım Kasko"),
                Some("Kasım Kasko"),
            ),
            lead(
                "l3",
                "05333333333",
                LeadSource::WebForm,
                utm("google", "cpc", "Trafik"),
                None,
            ),
            lead(
                "l4",
                "05334444444",
                LeadSource::WhatsApp,
                Utm::default(),
                None,
            ),
        ] {
            crm.create_card(&t, &card).await.unwrap();
        }
        // l2's number now belongs to a customer card: it became a customer.
        let now = "2026-11-20T10:00:00Z".parse().unwrap();
        crm.create_card(
            &t,
            &Card::person_customer(
                "c1",
                "Müşteri",
                vec![PhoneNumber::parse("05332222222").unwrap()],
                now,
            ),
        )
        .await
        .unwrap();
        let report = attribution_report(
            crm,
            &t,
            "2026-11-01T00:00:00Z".parse().unwrap(),
            "2026-12-01T00:00:00Z".parse().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(
            report.total,
            Counts {
                leads: 4,
                customers: 1
            }
        );
        assert_eq!(
            report.by_source["meta_lead_ads"],
            Counts {
                leads: 2,
                customers: 1
            }
        );
        assert_eq!(
            report.by_utm_campaign["Kasım Kasko"],
            Counts {
                leads: 2,
                customers: 1
            }
        );
        assert_eq!(
            report.by_utm_medium["cpc"],
            Counts {
                leads: 1,
                customers: 0
            }
        );
        assert_eq!(
            report.by_utm_source[UNTAGGED],
            Counts {
                leads: 1,
                customers: 0
            }
        );
        assert_eq!(
            report.by_meta_campaign.len(),
            1,
            "only Lead Ads leads have a Meta campaign"
        );
        let sum: u64 = report.by_utm_source.values().map(|c| c.leads).sum();
        assert_eq!(sum, report.total.leads, "every column sums to the total");
    }
}
