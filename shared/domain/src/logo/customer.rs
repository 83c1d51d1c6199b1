//! A cari onto a CRM customer card and back: the seed's default mapping (title ↔ TITLE, tax
//! number ↔ TAX_ID or TCKNO, phones, e-mail, address), and the ids that make a retried run
//! write the same card and create the same cari.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::arp::{new_arp_with, CrmCustomer, LogoCustomer, LogoFields};
use crate::party::{Card, CardKind, CustomerDetails, IdentityKey, LeadSource, Profile};
use crate::tax_id::TaxId;
use crate::tenant::sha256_hex;

/// The system name of Logo codes in a card's external ids and identity keys.
pub const LOGO: &str = "logo";

pub fn logo_key(code: &str) -> IdentityKey {
    IdentityKey::External {
        system: LOGO.into(),
        id: code.into(),
    }
}

/// Whether the Logo sync creates this card in Logo: a customer with a tax number (Logo refuses
/// a cari without one) and no Logo code yet.
pub fn awaits_logo_code(card: &Card) -> bool {
    card.kind == CardKind::Customer
        && card.customer.as_ref().is_some_and(|c| c.tax_id.is_some())
        && !card.external_ids.contains_key(LOGO)
}

/// The id of a card first seen in Logo: derived from its code, so a page written twice
/// writes one card.
pub fn card_id_for(code: &str) -> String {
    format!("logo-{}", &sha256_hex(code)[..24])
}

/// The cari code the CRM gives a customer it creates in Logo: derived from the card, so a run
/// retried after the create asks Logo for the same code instead of creating a second cari.
/// Ten base-36 characters after the prefix: 14 with `CRM.`, within Logo's 17.
pub fn code_for(prefix: &str, card_id: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let digest = Sha256::digest(card_id.as_bytes());
    let mut n = u128::from_be_bytes(digest[..16].try_into().unwrap_or([0; 16]));
    let mut code = String::with_capacity(prefix.len() + 10);
    code.push_str(prefix);
    for _ in 0..10 {
        code.push(DIGITS[(n % 36) as usize] as char);
        n /= 36;
    }
    code
}

/// A new customer card for a cari the CRM does not know.
pub fn new_card(customer: &LogoCustomer, at: DateTime<Utc>) -> Card {
    let mut card = Card {
        card_id: card_id_for(&customer.code),
        kind: CardKind::Customer,
        display_name: String::new(),
        phones: vec![],
        emails: vec![],
        owner: None,
        external_ids: BTreeMap::new(),
        profile: Profile::default(),
        lead: None,
        customer: None,
        contact: None,
        created_at: at,
        updated_at: at,
    };
    apply(&mut card, customer, at);
    card.customer = card.customer.take().map(|mut c| {
        c.source = Some(LeadSource::Logo);
        c
    });
    card
}

/// Logo's side of a cari onto a card (Logo won, or only Logo changed). Logo's phones and
/// e-mail come first; numbers the CRM learnt elsewhere (WhatsApp, calls) stay.
pub fn apply(card: &mut Card, customer: &LogoCustomer, at: DateTime<Utc>) {
    card.display_name = customer.title.clone();
    let mut phones = customer.phones.clone();
    phones.extend(
        card.phones
            .iter()
            .filter(|p| !customer.phones.contains(p))
            .cloned(),
    );
    card.phones = phones;
    if let Some(email) = &customer.email {
        card.emails.retain(|e| e != email);
        card.emails.insert(0, email.clone());
    }
    if customer.address.is_some() {
        card.profile.address = customer.address.clone();
    }
    if customer.city.is_some() {
        card.profile.city = customer.city.clone();
    }
    card.external_ids.insert(LOGO.into(), customer.code.clone());
    let source = card.customer.as_ref().and_then(|c| c.source);
    card.customer = Some(CustomerDetails {
        party_type: customer.party_type,
        tax_id: Some(customer.tax_id.as_str().to_string()),
        source,
    });
    if card.kind == CardKind::Lead {
        // A lead Logo invoices is a customer now (its lead details stay for attribution).
        card.kind = CardKind::Customer;
    }
    // The sync's own write is as of the run's start: a CRM edit after it is newer.
    card.updated_at = at;
}

/// The `Arps` body for a CRM card (a create under `code`, or the CRM's side of a conflict it
/// won); `None` for a card without a valid tax number, which Logo would refuse.
pub fn arp_body(card: &Card, code: &str, fields: &LogoFields) -> Option<Value> {
    let tax = card.customer.as_ref()?.tax_id.as_deref()?;
    let tax_id = TaxId::parse(tax).ok()?;
    Some(new_arp_with(
        &CrmCustomer {
            title: &card.display_name,
            tax_id: &tax_id,
            phone: card.phones.first(),
            email: card.emails.first().map(String::as_str),
            address: card.profile.address.as_deref(),
            city: card.profile.city.as_deref(),
        },
        code,
        fields,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logo::arp::LogoArp;
    use crate::party::PartyType;
    use crate::phone::PhoneNumber;

    fn customer() -> LogoCustomer {
        LogoArp {
            internal_reference: Some(41),
            code: Some("120.01.001".into()),
            title: Some("DEMİR LOJİSTİK A.Ş.".into()),
            tax_id: Some("4540536920".into()),
            cell_phone: Some("0532 111 22 33".into()),
            e_mail: Some("muhasebe@demirlojistik.com.tr".into()),
            address1: Some("Atatürk Cad. No: 5".into()),
            city: Some("İSTANBUL".into()),
            ..LogoArp::default()
        }
        .read()
        .unwrap()
    }

    #[test]
    fn ids_and_codes_are_stable_and_fit_logo() {
        assert_eq!(card_id_for("120.01.001"), card_id_for("120.01.001"));
        assert_ne!(card_id_for("120.01.001"), card_id_for("120.01.002"));
        let code = code_for("CRM.", "0193a6f0-1c2d-7e3f-8a9b-0c1d2e3f4a5b");
        assert_eq!(
            code,
            code_for("CRM.", "0193a6f0-1c2d-7e3f-8a9b-0c1d2e3f4a5b")
        );
        assert_eq!(code.len(), 14);
        assert!(code.starts_with("CRM."));
    }

    #[test]
    fn a_cari_becomes_a_customer_card_and_goes_back_the_same() {
        let at = Utc::now();
        let card = new_card(&customer(), at);
        assert_eq!(card.kind, CardKind::Customer);
        assert_eq!(card.external_ids["logo"], "120.01.001");
        let details = card.customer.clone().unwrap();
        assert_eq!(
            (
                details.party_type,
                details.tax_id.as_deref(),
                details.source
            ),
            (
                PartyType::Company,
                Some("4540536920"),
                Some(LeadSource::Logo)
            )
        );
        let keys: Vec<_> = card.identity_keys().iter().map(|k| k.key()).collect();
        assert!(keys.contains(&"TAX#4540536920".to_string()));
        assert!(keys.contains(&"EXT#logo#120.01.001".to_string()));
        let body = arp_body(&card, "120.01.001", &LogoFields::default()).unwrap();
        assert_eq!(body["TAX_ID"], "4540536920");
        assert_eq!(body["CELL_PHONE"], "05321112233");
        assert_eq!(body["ADDRESS1"], "Atatürk Cad. No: 5");
    }

    #[test]
    fn logo_first_keeps_the_numbers_the_crm_learnt_elsewhere() {
        let at = Utc::now();
        let whatsapp = PhoneNumber::parse("0555 444 33 22").unwrap();
        let mut card = Card::person_customer("c-1", "Demir Lojistik", vec![whatsapp.clone()], at);
        apply(&mut card, &customer(), at);
        assert_eq!(card.phones.len(), 2);
        assert_eq!(card.phones[1], whatsapp);
        assert_eq!(card.display_name, "DEMİR LOJİSTİK A.Ş.");
    }
}
