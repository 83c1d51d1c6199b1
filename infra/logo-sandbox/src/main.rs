//! `logo-sandbox [--port P] [--port-file F] [--customers N] [--items M] [--bad-every K]
//! [--token-ttl SECONDS]`: the Logo stand-in of `make dev` and `make bench-sync`.

use std::time::Duration;

use logo_sandbox::{handler, Config, Sandbox};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    let (mut port, mut port_file) = (0u16, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value()?.parse()?,
            "--port-file" => port_file = Some(value()?),
            "--customers" => config.customers = value()?.parse()?,
            "--items" => config.items = value()?.parse()?,
            "--bad-every" => config.bad_every = value()?.parse()?,
            "--token-ttl" => config.token_ttl = Duration::from_secs(value()?.parse()?),
            "--help" | "-h" => {
                println!("logo-sandbox [--port P] [--port-file F] [--customers N] [--items M] [--bad-every K] [--token-ttl S]");
                return Ok(());
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let banner = format!(
        "{} cari, {} invoices, {} items, a bad record every {} (client {}, user {})",
        config.customers,
        config.customers * 3,
        config.items,
        config.bad_every,
        config.client_id,
        config.username
    );
    let sandbox = Sandbox::new(config);
    sandbox_http::run(
        port,
        port_file,
        |bound| format!("Logo sandbox on http://127.0.0.1:{bound}: {banner}"),
        handler(sandbox),
    )
}
