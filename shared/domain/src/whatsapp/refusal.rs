//! Meta's send errors (contracts §1.9–1.10) in words a salesperson understands, and what each
//! means for the send: never again as it is, again later, or again once someone fixed our side.
//! One table, so a code Meta adds or changes is a one-line fix.

use super::send::SendProblem;

/// What a refused send does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// The same message will be refused again: the person must change it (a template, the
    /// number). The send is `failed`.
    Never,
    /// Throttled or briefly unavailable: the send waits and goes again after about this long.
    Later { after_secs: u64 },
    /// Our token or permissions: the send waits (and ends in the DLQ) until an operator fixes
    /// the tenant's WhatsApp connection and replays it.
    AfterFix,
}

/// Meta's refusal of one send: the code Meta says to branch on, and its texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRefusal {
    pub code: i64,
    /// `error_data.details`.
    pub details: Option<String>,
    /// Meta's `message` (`(#131026) Message undeliverable`).
    pub message: String,
}

struct Meaning {
    code: &'static str,
    en: &'static str,
    tr: &'static str,
    retry: RetryDecision,
}

const fn meaning(
    code: &'static str,
    en: &'static str,
    tr: &'static str,
    retry: RetryDecision,
) -> Meaning {
    Meaning {
        code,
        en,
        tr,
        retry,
    }
}

fn meaning_of(code: i64) -> Meaning {
    use RetryDecision::*;
    match code {
        131026 => meaning(
            "whatsapp_not_on_whatsapp",
            "The number cannot receive WhatsApp messages (not on WhatsApp, an old app, or the terms not accepted).",
            "Numara WhatsApp mesajı alamıyor (WhatsApp kullanmıyor, uygulaması eski ya da koşulları kabul etmemiş).",
            Never,
        ),
        131047 => meaning(
            "whatsapp_template_required",
            "More than 24 hours since the customer's last message: only an approved template can be sent.",
            "Müşterinin son mesajının üzerinden 24 saatten fazla geçti: yalnızca onaylı bir şablon gönderilebilir.",
            Never,
        ),
        132000 => meaning(
            "whatsapp_template_parameters",
            "The template's parameters do not match it (their number differs from the template's).",
            "Şablonun parametreleri şablonla uyuşmuyor (sayısı farklı).",
            Never,
        ),
        132001 => meaning(
            "whatsapp_template_missing",
            "No approved template with this name in this language.",
            "Bu adla ve bu dilde onaylı bir şablon yok.",
            Never,
        ),
        132012 => meaning(
            "whatsapp_template_parameters",
            "A template parameter has the wrong format.",
            "Bir şablon parametresinin biçimi yanlış.",
            Never,
        ),
        132015 | 132016 => meaning(
            "whatsapp_template_paused",
            "The template is paused or disabled by Meta for its quality.",
            "Şablon, kalitesi nedeniyle Meta tarafından duraklatılmış ya da kapatılmış.",
            Never,
        ),
        130429 => meaning(
            "whatsapp_rate_limited",
            "The number's sending rate was exceeded; the message goes again shortly.",
            "Numaranın gönderim hızı aşıldı; mesaj biraz sonra yeniden gönderilecek.",
            Later { after_secs: 5 },
        ),
        131056 => meaning(
            "whatsapp_pair_rate_limited",
            "Too many messages to this customer in a short time; the message goes again in a minute.",
            "Bu müşteriye kısa sürede çok fazla mesaj gönderildi; mesaj bir dakika sonra yeniden gönderilecek.",
            Later { after_secs: 60 },
        ),
        4 | 80007 => meaning(
            "whatsapp_rate_limited",
            "Meta's call limit for the account was reached; the message goes again later.",
            "Hesabın Meta çağrı sınırına ulaşıldı; mesaj daha sonra yeniden gönderilecek.",
            Later { after_secs: 60 },
        ),
        131057 => meaning(
            "whatsapp_maintenance",
            "The WhatsApp account is in maintenance; the message goes again in a minute.",
            "WhatsApp hesabı bakımda; mesaj bir dakika sonra yeniden gönderilecek.",
            Later { after_secs: 60 },
        ),
        1 | 2 | 131000 | 131016 => meaning(
            "whatsapp_unavailable",
            "WhatsApp is briefly unavailable; the message goes again shortly.",
            "WhatsApp geçici olarak kullanılamıyor; mesaj biraz sonra yeniden gönderilecek.",
            Later { after_secs: 30 },
        ),
        0 | 190 => meaning(
            "whatsapp_token_invalid",
            "The tenant's WhatsApp access token is invalid or expired: renew it, then replay the message.",
            "WhatsApp erişim anahtarı (token) geçersiz ya da süresi dolmuş: yenileyip mesajı yeniden gönderin.",
            AfterFix,
        ),
        10 | 200..=299 => meaning(
            "whatsapp_permission_missing",
            "The WhatsApp app lacks a permission (whatsapp_business_messaging): grant it, then replay the message.",
            "WhatsApp uygulamasının bir izni eksik (whatsapp_business_messaging): izni verip mesajı yeniden gönderin.",
            AfterFix,
        ),
        131050 => meaning(
            "whatsapp_opted_out",
            "The customer stopped marketing messages from this business.",
            "Müşteri bu işletmeden pazarlama mesajı almayı durdurmuş.",
            Never,
        ),
        131049 => meaning(
            "whatsapp_engagement_limit",
            "Meta held back this marketing message to keep the customer's experience; try again tomorrow.",
            "Meta, müşteri deneyimini korumak için bu pazarlama mesajını iletmedi; yarın yeniden deneyin.",
            Never,
        ),
        131048 | 368 | 131031 => meaning(
            "whatsapp_account_restricted",
            "The WhatsApp account is restricted (spam or policy): see the WhatsApp Manager.",
            "WhatsApp hesabı kısıtlanmış (spam ya da politika): WhatsApp Yöneticisi'ne bakın.",
            Never,
        ),
        131051 => meaning(
            "whatsapp_unsupported_type",
            "This message type is not supported.",
            "Bu mesaj türü desteklenmiyor.",
            Never,
        ),
        100 | 131008 | 131009 => meaning(
            "whatsapp_invalid_request",
            "Meta refused a parameter of the message (see Meta's details).",
            "Meta mesajın bir parametresini reddetti (Meta'nın açıklamasına bakın).",
            Never,
        ),
        _ => meaning(
            "whatsapp_refused",
            "Meta refused the message (see Meta's code and details).",
            "Meta mesajı reddetti (Meta'nın kodu ve açıklamasına bakın).",
            Never,
        ),
    }
}

impl MetaRefusal {
    /// The problem to show and what the send does next.
    pub fn judge(&self) -> (SendProblem, RetryDecision) {
        let m = meaning_of(self.code);
        let details = self
            .details
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| Some(self.message.clone()).filter(|m| !m.is_empty()));
        (
            SendProblem {
                code: m.code.to_string(),
                meta_code: Some(self.code),
                message: m.en.to_string(),
                message_tr: m.tr.to_string(),
                details,
            },
            m.retry,
        )
    }
}

/// A problem found before calling Meta (no phone, outside the window, not connected).
pub fn problem(code: &str, en: &str, tr: &str) -> SendProblem {
    SendProblem {
        code: code.to_string(),
        meta_code: None,
        message: en.to_string(),
        message_tr: tr.to_string(),
        details: None,
    }
}
