//! A Euromsg Express CRM/ERP gateway stand-in (seed 001; the paths and fields the client
//! infers, `shared/adapters/src/partner/express`) over a generated member set: members are
//! made from their index when asked for, so memory stays flat whatever `N` is; only what
//! clients create or the controls change is kept.
//!
//! - `POST /tokens` (`clientName`/`password`) → `tokenValue`, `expireTime` (after
//!   `token_ttl`), `roles`; `PUT /apiKey/identification?apiKey=` with that token → the
//!   account's token. An expired or unknown token gets 401.
//! - `GET/POST /emailLists`, `PATCH/DELETE /emailLists/{id}`; `GET /members?listId=|email=`,
//!   `POST /members`, `PATCH/DELETE /members/{id}`; `GET /campaigns`,
//!   `GET /campaigns/{id}/report`, `GET /campaigns/{id}/report-detail`; `GET /health-check`.
//!   Lists page with `page` (from 1) and `pageSize` → `{ data, totalCount, page, pageSize }`.
//! - An account whose API key is [`NO_PACKAGE_KEY`] (or every account after
//!   `POST /sandbox/package {"active": false}`) has no sending package: member calls answer
//!   403 `{"errorCode": "NoActivePackage"}`.
//! - Controls: `GET /sandbox/stats`, `POST /sandbox/expire` (every token expires),
//!   `POST /sandbox/member {"index", "permission", "unsubscribed"}` (a member changed in
//!   Express now), `POST /sandbox/throttle {"every": n}` (every n-th call answers 429 with
//!   `Retry-After: 1`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sandbox_http::{body_text, reply, Incoming, Method, Reply, Request};
use serde_json::{json, Value};

/// The API key of an account without a sending package.
pub const NO_PACKAGE_KEY: &str = "no-package";
/// The generated members' list.
const ALL: &str = "1";

#[derive(Debug, Clone)]
pub struct Config {
    pub members: u64,
    /// Every this many members one has an unreadable address (0: none).
    pub bad_every: u64,
    /// Rows of the sent campaign's detailed report (the first members).
    pub report_rows: u64,
    pub token_ttl: Duration,
    pub client_name: String,
    pub password: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            members: 200,
            bad_every: 0,
            report_rows: 100,
            token_ttl: Duration::from_secs(3600),
            client_name: "onecrm".into(),
            password: "express-sandbox-password".into(),
        }
    }
}

/// A member changed by a control or created by a client.
#[derive(Debug, Clone)]
struct Changed {
    email: String,
    list: String,
    permission: String,
    unsubscribed: bool,
    at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    integrator_tokens: HashMap<String, Instant>,
    /// Account token → (API key, expiry).
    account_tokens: HashMap<String, (String, Instant)>,
    lists: Vec<(String, String)>,
    changed: HashMap<u64, Changed>,
    /// Members made by clients, by id (past the generated ones).
    created: Vec<Changed>,
    updates: u64,
    deleted: u64,
    requests: u64,
    throttled: u64,
    throttle_every: u64,
    package_off: bool,
}

pub struct Sandbox {
    config: Config,
    started: DateTime<Utc>,
    state: Mutex<State>,
}

fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Sandbox {
    pub fn new(config: Config) -> Arc<Self> {
        let state = State {
            lists: vec![(ALL.into(), "Tüm Müşteriler".into())],
            ..State::default()
        };
        Arc::new(Sandbox {
            config,
            started: Utc::now(),
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn email(i: u64) -> String {
        format!("uye{i}@ornek-express.com.tr")
    }

    /// The generated member `i` as it stands now.
    fn member(&self, i: u64) -> Value {
        let id = i + 1;
        if let Some(c) = self.state().changed.get(&i).cloned() {
            return json!({ "memberId": id, "email": c.email, "permissionStatus": c.permission,
                "unsubscribed": c.unsubscribed, "unsubscribeDate": c.unsubscribed.then(|| iso(c.at)),
                "iysConsentDate": iso(c.at), "iysConsentSource": "HS_WEB" });
        }
        let bad =
            self.config.bad_every > 0 && i % self.config.bad_every == self.config.bad_every - 1;
        let email = if bad {
            "bozuk-adres".to_string()
        } else {
            Self::email(i)
        };
        let consent = self.started - chrono::Duration::days((i % 400) as i64 + 10);
        let unsubscribed = i % 17 == 3;
        let source = ["HS_WEB", "HS_FIZIKSEL_ORTAM", "HS_EPOSTA"][(i % 3) as usize];
        json!({
            "memberId": id,
            "email": email,
            "firstName": format!("Üye{i}"),
            "lastName": "Yılmaz",
            "permissionStatus": if i % 13 == 5 { "RET" } else { "ONAY" },
            "unsubscribed": unsubscribed,
            "unsubscribeDate": unsubscribed.then(|| iso(consent + chrono::Duration::days(3))),
            "iysConsentDate": iso(consent),
            "iysConsentSource": source,
        })
    }

    fn created_member(&self, k: usize, c: &Changed) -> Value {
        json!({ "memberId": self.config.members + 1 + k as u64, "email": c.email,
            "permissionStatus": c.permission, "unsubscribed": c.unsubscribed,
            "iysConsentDate": iso(c.at), "iysConsentSource": "HS_WEB" })
    }

    fn paged(query: &HashMap<String, String>, total: u64, record: impl Fn(u64) -> Value) -> Value {
        let page: u64 = query
            .get("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1)
            .max(1);
        let size: u64 = query
            .get("pageSize")
            .and_then(|p| p.parse().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        let from = (page - 1) * size;
        let data: Vec<Value> = (from..total.min(from + size)).map(record).collect();
        json!({ "data": data, "totalCount": total, "page": page, "pageSize": size })
    }

    fn members(&self, query: &HashMap<String, String>) -> Value {
        if let Some(email) = query.get("email") {
            let email = email.to_lowercase();
            let generated = email
                .strip_prefix("uye")
                .and_then(|r| r.strip_suffix("@ornek-express.com.tr"))
                .and_then(|n| n.parse::<u64>().ok())
                .filter(|i| *i < self.config.members)
                .map(|i| self.member(i));
            let created = self.state().created.clone();
            let made = created
                .iter()
                .enumerate()
                .find(|(_, c)| c.email == email)
                .map(|(k, c)| self.created_member(k, c));
            let found: Vec<Value> = generated.into_iter().chain(made).collect();
            return json!({ "data": found, "totalCount": found.len(), "page": 1, "pageSize": 1 });
        }
        let list = query.get("listId").cloned().unwrap_or_else(|| ALL.into());
        let created: Vec<(usize, Changed)> = self
            .state()
            .created
            .iter()
            .cloned()
            .enumerate()
            .filter(|(_, c)| c.list == list)
            .collect();
        let generated = if list == ALL { self.config.members } else { 0 };
        Self::paged(query, generated + created.len() as u64, |i| {
            match i < generated {
                true => self.member(i),
                false => {
                    let (k, c) = &created[(i - generated) as usize];
                    self.created_member(*k, c)
                }
            }
        })
    }

    fn campaigns(&self) -> Vec<Value> {
        vec![
            json!({ "id": 501, "name": "Kasım Fırsatları", "subject": "Size özel indirim", "status": "Sent", "sendDate": iso(self.started - chrono::Duration::days(2)) }),
            json!({ "id": 502, "name": "Yeni Sezon", "subject": "Yeni ürünler", "status": "OnGoing", "sendDate": iso(self.started - chrono::Duration::hours(1)) }),
            json!({ "id": 503, "name": "Aralık Bülteni", "status": "Draft" }),
        ]
    }

    fn report_size(&self, campaign: &str) -> u64 {
        match campaign {
            "501" => self.config.report_rows.min(self.config.members),
            "502" => (self.config.report_rows / 10).min(self.config.members),
            _ => 0,
        }
    }

    fn report_row(&self, campaign: &str, i: u64) -> Value {
        let sent = self.started - chrono::Duration::days(if campaign == "501" { 2 } else { 0 });
        let status = match i % 50 {
            7 => "HardBounced",
            13 => "SoftBounced",
            _ => "Sent",
        };
        let delivered = status == "Sent";
        let opened = delivered && i.is_multiple_of(3);
        let clicked = opened && i.is_multiple_of(9);
        json!({
            "memberId": i + 1,
            "email": Self::email(i),
            "status": status,
            "sendDate": iso(sent),
            "opened": opened,
            "openDate": opened.then(|| iso(sent + chrono::Duration::minutes(30 + (i % 600) as i64))),
            "clicked": clicked,
            "clickDate": clicked.then(|| iso(sent + chrono::Duration::minutes(40 + (i % 600) as i64))),
        })
    }

    fn totals(&self, campaign: &str) -> Value {
        let n = self.report_size(campaign);
        let rows: Vec<Value> = (0..n).map(|i| self.report_row(campaign, i)).collect();
        let count = |f: &dyn Fn(&Value) -> bool| rows.iter().filter(|r| f(r)).count();
        json!({
            "sent": n,
            "hardBounced": count(&|r| r["status"] == "HardBounced"),
            "softBounced": count(&|r| r["status"] == "SoftBounced"),
            "opened": count(&|r| r["opened"] == true),
            "clicked": count(&|r| r["clicked"] == true),
            "unsubscribed": 0,
        })
    }

    pub fn stats(&self) -> Value {
        let s = self.state();
        json!({ "requests": s.requests, "throttled": s.throttled, "created": s.created.len(),
            "updated": s.updates, "deleted": s.deleted, "lists": s.lists.len(), "members": self.config.members })
    }

    fn token(&self, body: &str) -> (u16, Value) {
        let body: Value = serde_json::from_str(body).unwrap_or_default();
        if body["clientName"] != self.config.client_name.as_str()
            || body["password"] != self.config.password.as_str()
        {
            return (404, json!({ "message": "NotFound" }));
        }
        let token = uuid::Uuid::new_v4().to_string();
        self.state()
            .integrator_tokens
            .insert(token.clone(), Instant::now() + self.config.token_ttl);
        (
            200,
            json!({ "tokenValue": token, "expireTime": iso(Utc::now() + self.ttl()), "roles": ["Integrator"] }),
        )
    }

    fn ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.token_ttl).unwrap_or_default()
    }

    fn bearer(request: &Request<Incoming>) -> String {
        request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string()
    }

    fn identify(&self, bearer: &str, query: &HashMap<String, String>) -> (u16, Value) {
        let valid = self
            .state()
            .integrator_tokens
            .get(bearer)
            .is_some_and(|until| Instant::now() < *until);
        if !valid {
            return (401, json!({ "message": "Token süresi doldu" }));
        }
        let Some(key) = query.get("apiKey").filter(|k| !k.is_empty()) else {
            return (400, json!({ "message": "apiKey zorunludur" }));
        };
        let token = uuid::Uuid::new_v4().to_string();
        self.state().account_tokens.insert(
            token.clone(),
            (key.clone(), Instant::now() + self.config.token_ttl),
        );
        (
            200,
            json!({ "tokenValue": token, "expireTime": iso(Utc::now() + self.ttl()) }),
        )
    }

    fn expire(&self) {
        let mut s = self.state();
        let past = Instant::now() - Duration::from_secs(1);
        s.integrator_tokens.values_mut().for_each(|t| *t = past);
        s.account_tokens.values_mut().for_each(|t| t.1 = past);
    }

    /// A control route (`/sandbox/...`) called in process (tests).
    pub fn control(&self, path: &str, body: &str) -> (u16, Value) {
        let body: Value = serde_json::from_str(body).unwrap_or_default();
        match path {
            "/sandbox/expire" => {
                self.expire();
                (200, json!({ "expired": true }))
            }
            "/sandbox/member" => {
                let Some(i) = body["index"].as_u64() else {
                    return (400, json!({ "message": "index" }));
                };
                let current = self.member(i);
                let changed = Changed {
                    email: current["email"].as_str().unwrap_or_default().to_string(),
                    list: ALL.into(),
                    permission: body["permission"].as_str().unwrap_or("ONAY").to_string(),
                    unsubscribed: body["unsubscribed"].as_bool().unwrap_or(false),
                    at: Utc::now(),
                };
                self.state().changed.insert(i, changed);
                (200, json!({ "changed": i }))
            }
            "/sandbox/throttle" => {
                self.state().throttle_every = body["every"].as_u64().unwrap_or(0);
                (200, json!({ "throttle": true }))
            }
            "/sandbox/package" => {
                self.state().package_off = !body["active"].as_bool().unwrap_or(true);
                (200, json!({ "package": true }))
            }
            _ => (404, json!({ "message": "no such sandbox route" })),
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Reply {
        let path = request.uri().path().to_ascii_lowercase();
        let query = sandbox_http::query(&request);
        let method = request.method().clone();
        let requests = {
            let mut s = self.state();
            s.requests += 1;
            s.requests
        };
        match (&method, path.as_str()) {
            (&Method::GET, "/sandbox/stats") => return reply(200, &self.stats()),
            (&Method::POST, p) if p.starts_with("/sandbox/") => {
                let (status, answer) = self.control(p, &body_text(request).await);
                return reply(status, &answer);
            }
            (&Method::GET, "/health-check") => return reply(200, &json!({ "status": "Healthy" })),
            _ => {}
        }
        let every = self.state().throttle_every;
        if every > 0 && requests.is_multiple_of(every) {
            self.state().throttled += 1;
            let mut answer = reply(429, &json!({ "message": "Too many requests" }));
            answer
                .headers_mut()
                .insert("retry-after", sandbox_http::HeaderValue::from_static("1"));
            return answer;
        }
        let bearer = Self::bearer(&request);
        match (&method, path.as_str()) {
            (&Method::POST, "/tokens") => {
                let (status, answer) = self.token(&body_text(request).await);
                return reply(status, &answer);
            }
            (&Method::PUT, "/apikey/identification") => {
                let (status, answer) = self.identify(&bearer, &query);
                return reply(status, &answer);
            }
            _ => {}
        }
        let account = self
            .state()
            .account_tokens
            .get(&bearer)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(key, _)| key.clone());
        let Some(key) = account else {
            return reply(
                401,
                &json!({ "message": "Token süresi doldu veya geçersiz" }),
            );
        };
        let no_package = key == NO_PACKAGE_KEY || self.state().package_off;
        if no_package && path.starts_with("/members") {
            return reply(
                403,
                &json!({ "errorCode": "NoActivePackage",
                "message": "Aktif gönderim paketiniz bulunmamaktadır; listelere üye akışı yapılamaz" }),
            );
        }
        let body = body_text(request).await;
        let body: Value = serde_json::from_str(&body).unwrap_or_default();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (status, answer) = match (&method, segments.as_slice()) {
            (&Method::GET, ["emaillists"]) => {
                let lists = self.state().lists.clone();
                (
                    200,
                    Self::paged(&query, lists.len() as u64, |i| {
                        let (id, name) = &lists[i as usize];
                        json!({ "id": id.parse::<u64>().unwrap_or_default(), "name": name })
                    }),
                )
            }
            (&Method::POST, ["emaillists"]) => {
                let mut s = self.state();
                let id = (s.lists.len() + 1).to_string();
                let name = body["name"].as_str().unwrap_or("Liste").to_string();
                s.lists.push((id.clone(), name.clone()));
                (
                    201,
                    json!({ "id": id.parse::<u64>().unwrap_or_default(), "name": name }),
                )
            }
            (&Method::PATCH, ["emaillists", id]) => {
                let mut s = self.state();
                match s.lists.iter_mut().find(|(l, _)| l == id) {
                    Some(list) => {
                        list.1 = body["name"].as_str().unwrap_or_default().to_string();
                        (200, json!({ "id": id, "name": list.1 }))
                    }
                    None => (404, json!({ "message": "Liste bulunamadı" })),
                }
            }
            (&Method::DELETE, ["emaillists", id]) => {
                self.state().lists.retain(|(l, _)| l != id);
                (200, json!({ "deleted": id }))
            }
            (&Method::GET, ["members"]) => (200, self.members(&query)),
            (&Method::POST, ["members"]) => self.create(&body),
            (&Method::PATCH, ["members", _]) => {
                self.state().updates += 1;
                (200, json!({ "updated": true }))
            }
            (&Method::DELETE, ["members", _]) => {
                self.state().deleted += 1;
                (200, json!({ "deleted": true }))
            }
            (&Method::GET, ["campaigns"]) => {
                let all = self.campaigns();
                (
                    200,
                    Self::paged(&query, all.len() as u64, |i| all[i as usize].clone()),
                )
            }
            (&Method::GET, ["campaigns", id, "report"]) => (200, self.totals(id)),
            (&Method::GET, ["campaigns", id, "report-detail"]) => {
                let id = id.to_string();
                (
                    200,
                    Self::paged(&query, self.report_size(&id), |i| self.report_row(&id, i)),
                )
            }
            _ => (
                404,
                json!({ "message": format!("{method} {path} bulunamadı") }),
            ),
        };
        reply(status, &answer)
    }

    fn create(&self, body: &Value) -> (u16, Value) {
        let Some(email) = body["email"].as_str().filter(|e| e.contains('@')) else {
            return (400, json!({ "message": "email zorunludur" }));
        };
        // Accounts with Express as their İYS integrator send the İYS fields; the sandbox asks
        // for them whenever one of them is sent.
        let iys = [
            "iysConsentDate",
            "iysConsentSource",
            "iysMerchantConsentStatus",
        ];
        let given = iys.iter().filter(|f| !body[**f].is_null()).count();
        if given > 0 && given < iys.len() {
            return (
                400,
                json!({ "message": "İYS alanları eksik: bireysel izin tarihi, kaynağı ve tacir izin durumu zorunludur" }),
            );
        }
        let mut s = self.state();
        s.created.push(Changed {
            email: email.to_lowercase(),
            list: body["listId"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body["listId"].to_string()),
            permission: "ONAY".into(),
            unsubscribed: false,
            at: Utc::now(),
        });
        let id = self.config.members + s.created.len() as u64;
        (201, json!({ "memberId": id }))
    }
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

/// Starts a sandbox on a free loopback port (tests): its address and the sandbox.
pub async fn start(config: Config) -> (SocketAddr, Arc<Sandbox>) {
    let sandbox = Sandbox::new(config);
    let address = sandbox_http::start(handler(sandbox.clone())).await;
    (address, sandbox)
}
