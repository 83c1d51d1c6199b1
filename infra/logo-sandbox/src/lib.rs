//! A Logo REST stand-in (contracts.md §5) over a generated data set: `N` cari (Turkish
//! titles, valid VKN/TCKN, phones, e-mails), three sales invoices each (TRY and USD, VAT,
//! lines), `M` material cards with stock on hand, and deliberately bad records every
//! `bad_every`. Records are generated from their index when asked for, so memory stays flat
//! whatever `N` is; only what clients create or touch is kept.
//!
//! Endpoints: `POST /api/v1/token` (Basic client credentials; password and refresh_token
//! grants; tokens expire after `token_ttl`; an expired one gets 401 with
//! `ModelState.LoginError`), `GET/POST /api/v1/Arps`, `PUT /api/v1/Arps/{ref}`,
//! `GET /api/v1/salesInvoices`, `GET /api/v1/items`, `GET /api/v1/queries?tsql=` (the stock
//! query), with `offset`/`limit`/`withCount` and the `q` filters the client sends. Control:
//! `GET /sandbox/stats`, `POST /sandbox/touch` (`{"code", "fields"}`: a cari changed in Logo
//! now), `POST /sandbox/expire` (every token expires).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use onecrm_domain::tax_id::TaxId;
use sandbox_http::{body_text, reply, Incoming, Method, Reply, Request};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone)]
pub struct Config {
    pub customers: u64,
    pub items: u64,
    /// Every this many records one is bad (0: none).
    pub bad_every: u64,
    pub token_ttl: Duration,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    /// The day invoices are dated back from (60 days of them).
    pub today: NaiveDate,
    /// Largest page served, whatever `limit` asks.
    pub max_page: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            customers: 1000,
            items: 200,
            bad_every: 500,
            token_ttl: Duration::from_secs(1200),
            client_id: "onecrm".into(),
            client_secret: "demo-logo-secret".into(),
            username: "LOGO".into(),
            password: "demo-logo-password".into(),
            today: Utc::now().date_naive(),
            max_page: 500,
        }
    }
}

/// What generated records say they were last changed at.
const GENERATED_AT: &str = "2026-01-05T09:00:00";

#[derive(Default)]
struct State {
    tokens: HashMap<String, Instant>,
    refresh_tokens: HashMap<String, String>,
    created: Vec<Value>,
    /// Touched generated cari: their changed fields and when.
    touched: HashMap<u64, (Map<String, Value>, NaiveDateTime)>,
    /// Created or updated cari by code: how many creates each code got.
    creates: HashMap<String, u64>,
    updates: u64,
    logins: u64,
    requests: u64,
}

pub struct Sandbox {
    config: Config,
    state: Mutex<State>,
}

const SURNAMES: &[&str] = &[
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Özdemir", "Arslan",
    "Doğan", "Kılıç", "Aslan", "Çetin", "Kara", "Koç", "Kurt", "Özkan", "Şimşek", "İnce",
];
const SECTORS: &[&str] = &[
    "İnşaat", "Lojistik", "Gıda", "Tekstil", "Otomotiv", "Kimya", "Mobilya", "Enerji", "Turizm",
    "Bilişim",
];
const SUFFIXES: &[&str] = &["Ltd. Şti.", "A.Ş.", "San. ve Tic. A.Ş.", "Tic. Ltd. Şti."];
const NAMES: &[&str] = &[
    "Ayşe", "Mehmet", "Zeynep", "Ahmet", "Elif", "Mustafa", "Şule", "İsmail",
];
const CITIES: &[&str] = &[
    "İSTANBUL",
    "ANKARA",
    "İZMİR",
    "BURSA",
    "ANTALYA",
    "KONYA",
    "ADANA",
    "IĞDIR",
];

const VAT_RATES: [u32; 3] = [20, 10, 1];

/// A small deterministic mix of `n` (splitmix64).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A valid tax number from `seed`: a VKN (10 digits) or a TCKN (11), checksums found by trial.
fn tax_number(seed: u64, person: bool) -> String {
    if person {
        let base = format!("{}{:08}", 1 + seed % 9, mix(seed) % 100_000_000);
        (0..100)
            .map(|c| format!("{base}{c:02}"))
            .find(|t| TaxId::parse(t).is_ok())
            .unwrap_or_default()
    } else {
        let base = format!("{:09}", mix(seed) % 1_000_000_000);
        (0..10)
            .map(|c| format!("{base}{c}"))
            .find(|t| TaxId::parse(t).is_ok())
            .unwrap_or_default()
    }
}

fn kurus(k: i64) -> Value {
    json!(k as f64 / 100.0)
}

impl Sandbox {
    pub fn new(config: Config) -> Arc<Self> {
        Arc::new(Sandbox {
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn bad(&self, index: u64, kind: u64) -> bool {
        self.config.bad_every > 0 && index % self.config.bad_every == kind % self.config.bad_every
    }

    pub fn code(index: u64) -> String {
        format!("120.01.{index:06}")
    }

    /// The generated cari `index` (as Logo lists it), with what was touched.
    fn arp(&self, index: u64) -> Value {
        let h = mix(index);
        let person = h % 10 < 3;
        let title = if person {
            format!(
                "{} {}",
                NAMES[(h >> 8) as usize % NAMES.len()],
                SURNAMES[(h >> 16) as usize % SURNAMES.len()]
            )
        } else {
            format!(
                "{} {} {}",
                SURNAMES[(h >> 8) as usize % SURNAMES.len()],
                SECTORS[(h >> 16) as usize % SECTORS.len()],
                SUFFIXES[(h >> 24) as usize % SUFFIXES.len()]
            )
        };
        let mut tax = tax_number(index, person);
        if self.bad(index, 7) {
            // A VKN whose check digit is off.
            let last = tax.pop().and_then(|c| c.to_digit(10)).unwrap_or(0);
            tax.push(char::from_digit((last + 1) % 10, 10).unwrap_or('0'));
        }
        let mut arp = json!({
            "INTERNAL_REFERENCE": index + 1,
            "CODE": Self::code(index),
            "TITLE": title,
            "ACCOUNT_TYPE": 3,
            "CELL_PHONE": format!("05{}{:08}", 30 + h % 10, (h >> 12) % 100_000_000),
            "TELEPHONE1": format!("0212{:07}", (h >> 20) % 10_000_000),
            "E_MAIL": format!("muhasebe{index}@ornek{}.com.tr", h % 97),
            "ADDRESS1": format!("Atatürk Cad. No: {}", 1 + h % 200),
            "CITY": CITIES[(h >> 28) as usize % CITIES.len()],
            "DATE_MODIFIED": GENERATED_AT,
        });
        if !self.bad(index, 13) {
            arp[if person { "TCKNO" } else { "TAX_ID" }] = json!(tax);
        }
        if let Some((fields, at)) = self.state().touched.get(&index) {
            for (k, v) in fields {
                arp[k] = v.clone();
            }
            arp["DATE_MODIFIED"] = json!(at.format("%Y-%m-%dT%H:%M:%S").to_string());
        }
        arp
    }

    /// The generated invoice `index` (cari `index / 3`).
    fn invoice(&self, index: u64) -> Value {
        let h = mix(index ^ 0xfeed);
        let customer = index / 3;
        let net = 10_000 + (h % 5_000_000) as i64;
        let vat = (net * 20 + 50) / 100;
        let usd = h.is_multiple_of(5);
        let mut invoice = json!({
            "INTERNAL_REFERENCE": index + 1,
            "TYPE": 8,
            "NUMBER": format!("SF{index:08}"),
            "DOC_NUMBER": format!("M{:06}", h % 1_000_000),
            "DATE": self.invoice_date(index).format("%d.%m.%Y").to_string(),
            "ARP_CODE": Self::code(customer),
            "CURR_INVOICE": if usd { 1 } else { 0 },
            "TC_XRATE": if usd { json!(34.5012) } else { json!(1) },
            "TOTAL_NET": kurus(net),
            "TOTAL_VAT": kurus(vat),
            "TOTAL_GROSS": kurus(net + vat),
            "CANCELLED": if h.is_multiple_of(50) { 1 } else { 0 },
            "DATE_MODIFIED": GENERATED_AT,
            "TRANSACTIONS": { "items": [{
                "TYPE": 0,
                "MASTER_CODE": format!("STK-{:05}", h % self.config.items.max(1)),
                "QUANTITY": 1,
                "PRICE": kurus(net),
                "VAT_RATE": 20,
                "UNIT_CODE": "ADET",
            }]},
        });
        if self.bad(index, 11) {
            invoice["TOTAL_NET"] = json!("on bin");
        }
        invoice
    }

    fn invoice_date(&self, index: u64) -> NaiveDate {
        self.config.today - chrono::Duration::days((mix(index ^ 0xda7e) % 60) as i64)
    }

    fn item(&self, index: u64) -> Value {
        let h = mix(index ^ 0x5106);
        let mut item = json!({
            "INTERNAL_REFERENCE": index + 1,
            "CARD_TYPE": 1,
            "CODE": format!("STK-{index:05}"),
            "NAME": format!("{} Ürün {index}", SECTORS[h as usize % SECTORS.len()]),
            "UNITSET_CODE": "ADET",
            "VAT": VAT_RATES[(h >> 8) as usize % 3],
            "DATE_MODIFIED": GENERATED_AT,
        });
        if self.bad(index, 5) {
            item["VAT"] = json!("yirmi");
        }
        item
    }

    fn on_hand(index: u64) -> Value {
        let h = mix(index ^ 0x570c);
        json!(format!("{}.{}", h % 5000, h % 4 * 25))
    }

    fn authorized(&self, request: &Request<Incoming>) -> bool {
        let token = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let state = self.state();
        token
            .and_then(|t| state.tokens.get(t))
            .is_some_and(|expires| Instant::now() < *expires)
    }

    fn issue(&self, state: &mut State) -> Value {
        let access = uuid::Uuid::new_v4().simple().to_string();
        let refresh = uuid::Uuid::new_v4().simple().to_string();
        state
            .tokens
            .insert(access.clone(), Instant::now() + self.config.token_ttl);
        state.refresh_tokens.insert(refresh.clone(), access.clone());
        state.logins += 1;
        json!({ "access_token": access, "token_type": "bearer", "expires_in": self.config.token_ttl.as_secs(), "refresh_token": refresh })
    }

    fn token(&self, basic: Option<&str>, form: &str) -> (u16, Value) {
        let expected = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.config.client_id, self.config.client_secret
        ));
        if basic.and_then(|b| b.strip_prefix("Basic ")) != Some(expected.as_str()) {
            return (400, json!({ "error": "invalid_client" }));
        }
        let fields: HashMap<String, String> = url::form_urlencoded::parse(form.as_bytes())
            .into_owned()
            .collect();
        let field = |k: &str| fields.get(k).map(String::as_str);
        let mut state = self.state();
        match field("grant_type") {
            Some("password")
                if field("username") == Some(&self.config.username)
                    && field("password") == Some(&self.config.password)
                    && field("firmno").is_some() =>
            {
                (200, self.issue(&mut state))
            }
            Some("refresh_token") => {
                match field("refresh_token").and_then(|r| state.refresh_tokens.remove(r)) {
                    Some(_) => (200, self.issue(&mut state)),
                    None => (400, json!({ "error": "invalid_grant" })),
                }
            }
            _ => (
                400,
                json!({ "error": "invalid_grant", "error_description": "user name or password is wrong" }),
            ),
        }
    }

    /// A page of `total` records produced by `record(i)`, as Logo lists them.
    fn page(
        &self,
        query: &HashMap<String, String>,
        total: u64,
        record: impl Fn(u64) -> Value,
    ) -> Value {
        let offset: u64 = query
            .get("offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let limit: u64 = query
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(25)
            .clamp(1, self.config.max_page);
        let end = (offset + limit).min(total);
        let items: Vec<Value> = (offset.min(end)..end).map(record).collect();
        let mut page =
            json!({ "offset": offset, "limit": limit, "count": items.len(), "items": items });
        if query.get("withCount").map(String::as_str) == Some("true") {
            page["totalCount"] = json!(total);
        }
        page
    }

    /// `FIELD op 'value'` of a `q` filter.
    fn condition<'q>(q: &'q str, field: &str, op: &str) -> Option<&'q str> {
        let rest = q.split(&format!("{field} {op} '")).nth(1)?;
        rest.split('\'').next()
    }

    fn changed_since(q: &str) -> Option<NaiveDateTime> {
        Self::condition(q, "DATE_MODIFIED", "gte")
            .and_then(|t| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok())
    }

    fn generated_at() -> NaiveDateTime {
        NaiveDateTime::parse_from_str(GENERATED_AT, "%Y-%m-%dT%H:%M:%S").unwrap_or_default()
    }

    fn arps(&self, query: &HashMap<String, String>) -> Value {
        let q = query.get("q").map(String::as_str).unwrap_or("");
        let created: Vec<Value> = self.state().created.clone();
        if let Some(code) = Self::condition(q, "CODE", "eq") {
            let mut found: Vec<Value> = created.into_iter().filter(|a| a["CODE"] == code).collect();
            if let Some(index) = code
                .strip_prefix("120.01.")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n < self.config.customers)
            {
                found.push(self.arp(index));
            }
            return self.list(query, found);
        }
        if let Some(tax) = Self::condition(q, "TAX_ID", "eq") {
            let found: Vec<Value> = (0..self.config.customers)
                .map(|i| self.arp(i))
                .chain(created)
                .filter(|a| a["TAX_ID"] == tax || a["TCKNO"] == tax)
                .collect();
            return self.list(query, found);
        }
        match Self::changed_since(q) {
            Some(since) if since > Self::generated_at() => {
                let touched: Vec<u64> = {
                    let state = self.state();
                    let mut t: Vec<u64> = state
                        .touched
                        .iter()
                        .filter(|(_, (_, at))| *at >= since)
                        .map(|(i, _)| *i)
                        .collect();
                    t.sort();
                    t
                };
                let found = touched
                    .into_iter()
                    .map(|i| self.arp(i))
                    .chain(created.into_iter().filter(|a| {
                        a["DATE_MODIFIED"]
                            .as_str()
                            .and_then(|t| {
                                NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S").ok()
                            })
                            .is_some_and(|at| at >= since)
                    }))
                    .collect();
                self.list(query, found)
            }
            _ => {
                let generated = self.config.customers;
                self.page(query, generated + created.len() as u64, |i| {
                    if i < generated {
                        self.arp(i)
                    } else {
                        created[(i - generated) as usize].clone()
                    }
                })
            }
        }
    }

    fn list(&self, query: &HashMap<String, String>, records: Vec<Value>) -> Value {
        self.page(query, records.len() as u64, |i| records[i as usize].clone())
    }

    fn invoices(&self, query: &HashMap<String, String>) -> Value {
        let q = query.get("q").map(String::as_str).unwrap_or("");
        let total = self.config.customers * 3;
        if let Some(code) = Self::condition(q, "ARP_CODE", "eq") {
            let found: Vec<Value> = code
                .strip_prefix("120.01.")
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|n| *n < self.config.customers)
                .map(|c| (c * 3..c * 3 + 3).map(|i| self.invoice(i)).collect())
                .unwrap_or_default();
            return self.list(query, found);
        }
        if let Some(from) = Self::condition(q, "DATE", "gte")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        {
            // The matching indexes only (4 bytes each), not the records.
            let matching: Vec<u64> = (0..total)
                .filter(|i| self.invoice_date(*i) >= from)
                .collect();
            return self.page(query, matching.len() as u64, |i| {
                self.invoice(matching[i as usize])
            });
        }
        match Self::changed_since(q) {
            Some(since) if since > Self::generated_at() => self.list(query, vec![]),
            _ => self.page(query, total, |i| self.invoice(i)),
        }
    }

    fn stock(&self, query: &HashMap<String, String>) -> Value {
        let sql = query.get("tsql").map(String::as_str).unwrap_or("");
        let refs: Vec<u64> = sql
            .split("STOCKREF IN (")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .map(|list| {
                list.split(',')
                    .filter_map(|r| r.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let rows: Vec<Value> = refs
            .into_iter()
            .filter(|r| *r >= 1 && *r <= self.config.items)
            .map(|r| json!({ "STOCKREF": r, "ONHAND": Self::on_hand(r - 1) }))
            .collect();
        self.list(query, rows)
    }

    fn create(&self, mut arp: Value) -> (u16, Value) {
        let Some(code) = arp["CODE"].as_str().map(str::to_string) else {
            return (
                400,
                json!({ "Message": "The request is invalid.", "ModelState": { "CODE": ["required"] } }),
            );
        };
        let mut state = self.state();
        let taken = state.created.iter().any(|a| a["CODE"] == code.as_str())
            || code
                .strip_prefix("120.01.")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < self.config.customers);
        *state.creates.entry(code.clone()).or_default() += 1;
        if taken {
            return (
                400,
                json!({ "Message": format!("Cari kodu {code} zaten kullanılıyor."), "ModelState": { "CODE": ["duplicate"] } }),
            );
        }
        let reference = 10_000_000 + state.created.len() as u64;
        arp["INTERNAL_REFERENCE"] = json!(reference);
        arp["DATE_MODIFIED"] = json!(Utc::now()
            .with_timezone(&chrono_tz_istanbul())
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string());
        state.created.push(arp.clone());
        (201, arp)
    }

    fn update(&self, reference: u64, arp: Value) -> (u16, Value) {
        let mut state = self.state();
        state.updates += 1;
        if reference >= 1 && reference <= self.config.customers {
            let fields = arp.as_object().cloned().unwrap_or_default();
            let now = istanbul_now();
            let entry = state
                .touched
                .entry(reference - 1)
                .or_insert_with(|| (Map::new(), now));
            entry.0.extend(fields);
            entry.1 = now;
            return (200, json!({ "INTERNAL_REFERENCE": reference }));
        }
        (404, json!({ "Message": "Kayıt bulunamadı." }))
    }

    /// A cari changed in Logo now (tests, demos).
    pub fn touch(&self, code: &str, fields: Map<String, Value>) -> bool {
        let Some(index) = code
            .strip_prefix("120.01.")
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|n| *n < self.config.customers)
        else {
            return false;
        };
        self.state().touched.insert(index, (fields, istanbul_now()));
        true
    }

    pub fn expire_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn stats(&self) -> Value {
        let state = self.state();
        json!({
            "logins": state.logins,
            "requests": state.requests,
            "created": state.created.len(),
            "updates": state.updates,
            "creates_by_code": state.creates,
            "customers": self.config.customers,
            "items": self.config.items,
        })
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        self.state().requests += 1;
        let path = request.uri().path().to_string();
        let query: HashMap<String, String> = sandbox_http::query(&request);
        let method = request.method().clone();
        let lower = path.to_ascii_lowercase();
        if lower == "/api/v1/token" && method == Method::POST {
            let basic = request
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = body_text(request).await;
            let (status, answer) = self.token(basic.as_deref(), &body);
            return reply(status, &answer);
        }
        if lower.starts_with("/sandbox/") {
            return match (method, lower.as_str()) {
                (Method::GET, "/sandbox/stats") => reply(200, &self.stats()),
                (Method::POST, "/sandbox/expire") => {
                    self.expire_tokens();
                    reply(200, &json!({ "expired": true }))
                }
                (Method::POST, "/sandbox/touch") => {
                    let body: Value =
                        serde_json::from_str(&body_text(request).await).unwrap_or_default();
                    let fields = body["fields"].as_object().cloned().unwrap_or_default();
                    let ok = body["code"].as_str().is_some_and(|c| self.touch(c, fields));
                    reply(if ok { 200 } else { 404 }, &json!({ "touched": ok }))
                }
                _ => reply(404, &json!({ "Message": "no such sandbox route" })),
            };
        }
        if !self.authorized(&request) {
            return reply(
                401,
                &json!({ "Message": "Authorization has been denied for this request.", "ModelState": { "LoginError": ["Token süresi doldu"] } }),
            );
        }
        let answer = match (method, lower.as_str()) {
            (Method::GET, "/api/v1/arps") => (200, self.arps(&query)),
            (Method::POST, "/api/v1/arps") => {
                match serde_json::from_str(&body_text(request).await) {
                    Ok(arp) => self.create(arp),
                    Err(_) => (400, json!({ "Message": "The request is invalid." })),
                }
            }
            (Method::PUT, p) if p.starts_with("/api/v1/arps/") => {
                let reference = p.trim_start_matches("/api/v1/arps/").parse().unwrap_or(0);
                let arp = serde_json::from_str(&body_text(request).await).unwrap_or_default();
                self.update(reference, arp)
            }
            (Method::GET, "/api/v1/salesinvoices") => (200, self.invoices(&query)),
            (Method::GET, "/api/v1/items") => {
                (200, self.page(&query, self.config.items, |i| self.item(i)))
            }
            (Method::GET, "/api/v1/queries") => {
                if query.get("tsql").is_some_and(|s| s.contains("STINVTOT")) {
                    (200, self.stock(&query))
                } else {
                    (
                        400,
                        json!({ "Message": "query refused", "ModelState": { "207": ["only the stock query is served here"] } }),
                    )
                }
            }
            _ => (
                404,
                json!({ "Message": format!("No HTTP resource was found that matches {path}") }),
            ),
        };
        reply(answer.0, &answer.1)
    }
}

fn chrono_tz_istanbul() -> chrono::FixedOffset {
    // Turkey keeps UTC+3 all year.
    chrono::FixedOffset::east_opt(3 * 3600)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).unwrap())
}

fn istanbul_now() -> NaiveDateTime {
    let now: DateTime<Utc> = Utc::now();
    now.with_timezone(&chrono_tz_istanbul()).naive_local()
}

/// Starts a sandbox on a free loopback port (tests): its address and the sandbox.
pub async fn start(config: Config) -> (SocketAddr, Arc<Sandbox>) {
    let sandbox = Sandbox::new(config);
    let address = sandbox_http::start(handler(sandbox.clone())).await;
    (address, sandbox)
}

/// The sandbox's request handler, for [`sandbox_http::serve`].
pub fn handler(
    sandbox: Arc<Sandbox>,
) -> impl Fn(Request<Incoming>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |request| Box::pin(sandbox.clone().handle(request))
}
