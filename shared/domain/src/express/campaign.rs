//! Campaigns sent from the Express panel and their per-person results: every result becomes a
//! timeline entry on the person's cards whose id is made of the campaign, the member and the
//! event, so a report read again the next night lands on the same entries.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::timeline::{Channel, Direction, TimelineEntry};

/// Days after sending during which a campaign's report is read again each night (opens and
/// clicks keep coming); after that the report is final.
pub const REPORT_DAYS: i64 = 7;

/// The seed's campaign states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CampaignStatus {
    Draft,
    Pending,
    Sent,
    OnGoing,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    pub campaign_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub status: CampaignStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Totals of the campaign report (`campaign-report`), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<CampaignTotals>,
    /// The report was read to its end after it became final: not read again.
    #[serde(default)]
    pub report_final: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignTotals {
    pub sent: u64,
    pub hard_bounced: u64,
    pub soft_bounced: u64,
    pub opened: u64,
    pub clicked: u64,
    pub unsubscribed: u64,
}

impl Campaign {
    /// Whether tonight's poll reads its report: sending or sent, and not final yet.
    pub fn needs_report(&self) -> bool {
        matches!(self.status, CampaignStatus::Sent | CampaignStatus::OnGoing) && !self.report_final
    }

    /// Whether the report read tonight is the last one needed.
    pub fn report_is_final(&self, now: DateTime<Utc>) -> bool {
        self.status == CampaignStatus::Sent
            && self
                .sent_at
                .is_some_and(|at| now - at > Duration::days(REPORT_DAYS))
    }
}

/// The seed's delivery states in `campaign-report-detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    Sent,
    HardBounced,
    SoftBounced,
}

/// One member's line of a campaign's detailed report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub member_id: String,
    /// Folded.
    pub email: String,
    pub delivery: Delivery,
    pub sent_at: Option<DateTime<Utc>>,
    pub opened_at: Option<DateTime<Utc>>,
    pub clicked_at: Option<DateTime<Utc>>,
}

/// The timeline entries a report row makes on one card: the delivery (sent or bounced), then
/// the open and the click when they happened. Without a time from Express, the campaign's.
pub fn entries_for(
    campaign: &Campaign,
    row: &ReportRow,
    card_id: &str,
    trace_id: &str,
) -> Vec<TimelineEntry> {
    let fallback = row.sent_at.or(campaign.sent_at).unwrap_or_default();
    let mut events = vec![match row.delivery {
        Delivery::Sent => (
            "sent",
            "email_campaign_sent",
            "gönderildi",
            Direction::Outbound,
        ),
        Delivery::HardBounced => (
            "hard_bounced",
            "email_hard_bounced",
            "ulaşmadı (kalıcı hata, adres geçersiz)",
            Direction::Outbound,
        ),
        Delivery::SoftBounced => (
            "soft_bounced",
            "email_soft_bounced",
            "ulaşmadı (geçici hata)",
            Direction::Outbound,
        ),
    }];
    let mut times = vec![row.sent_at.unwrap_or(fallback)];
    if let Some(at) = row.opened_at {
        events.push(("opened", "email_opened", "açıldı", Direction::Inbound));
        times.push(at);
    }
    if let Some(at) = row.clicked_at {
        events.push((
            "clicked",
            "email_clicked",
            "bağlantısı tıklandı",
            Direction::Inbound,
        ));
        times.push(at);
    }
    events
        .into_iter()
        .zip(times)
        .map(|((event, kind, said, direction), at)| TimelineEntry {
            entry_id: format!("express-{}-{}-{event}", campaign.campaign_id, row.member_id),
            card_id: card_id.to_string(),
            channel: Channel::Email,
            direction,
            kind: kind.into(),
            text: format!("E-posta kampanyası «{}» {said}", campaign.name),
            external_id: Some(format!("{}/{}", campaign.campaign_id, row.member_id)),
            attachment: None,
            details: serde_json::json!({
                "campaign_id": campaign.campaign_id,
                "campaign": campaign.name,
                "email": row.email,
                "event": event,
            }),
            occurred_at: at,
            trace_id: trace_id.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign() -> Campaign {
        Campaign {
            campaign_id: "c9".into(),
            name: "Kasım Fırsatları".into(),
            subject: None,
            status: CampaignStatus::Sent,
            sent_at: Some("2026-11-20T07:00:00Z".parse().unwrap()),
            totals: None,
            report_final: false,
        }
    }

    #[test]
    fn a_row_makes_one_entry_per_event_with_stable_ids() {
        let row = ReportRow {
            member_id: "m1".into(),
            email: "ayse@ornek.com".into(),
            delivery: Delivery::Sent,
            sent_at: None,
            opened_at: Some("2026-11-20T09:00:00Z".parse().unwrap()),
            clicked_at: Some("2026-11-20T09:01:00Z".parse().unwrap()),
        };
        let entries = entries_for(&campaign(), &row, "card-1", "t1");
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["email_campaign_sent", "email_opened", "email_clicked"]
        );
        assert_eq!(entries[0].occurred_at, campaign().sent_at.unwrap());
        assert_eq!(entries[2].entry_id, "express-c9-m1-clicked");
        // The next night, another trace: the same ids and times (the same stored items).
        let again = entries_for(&campaign(), &row, "card-1", "t2");
        assert!(entries
            .iter()
            .zip(&again)
            .all(|(a, b)| (a.entry_id.as_str(), a.occurred_at)
                == (b.entry_id.as_str(), b.occurred_at)));
        let bounced = ReportRow {
            delivery: Delivery::HardBounced,
            opened_at: None,
            clicked_at: None,
            ..row
        };
        let entries = entries_for(&campaign(), &bounced, "card-1", "t1");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].kind, "email_hard_bounced");
    }

    #[test]
    fn reports_are_read_until_a_week_after_sending() {
        let mut c = campaign();
        let now: DateTime<Utc> = "2026-11-26T23:30:00Z".parse().unwrap();
        assert!(c.needs_report() && !c.report_is_final(now));
        assert!(c.report_is_final(now + Duration::days(2)));
        c.status = CampaignStatus::Draft;
        assert!(!c.needs_report());
    }
}
