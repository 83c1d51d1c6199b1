//! `express-sandbox [--port P] [--port-file F] [--members N] [--bad-every K] [--token-ttl S]
//! [--report-rows R]`: the Euromsg Express stand-in of `make dev` and `make bench-poll`.

use std::time::Duration;

use express_sandbox::{handler, Config, Sandbox};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    let (mut port, mut port_file) = (0u16, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value()?.parse()?,
            "--port-file" => port_file = Some(value()?),
            "--members" => config.members = value()?.parse()?,
            "--bad-every" => config.bad_every = value()?.parse()?,
            "--report-rows" => config.report_rows = value()?.parse()?,
            "--token-ttl" => config.token_ttl = Duration::from_secs(value()?.parse()?),
            "--help" | "-h" => {
                println!("express-sandbox [--port P] [--port-file F] [--members N] [--bad-every K] [--report-rows R] [--token-ttl S]");
                return Ok(());
            }
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let banner = format!(
        "{} members, campaign reports of {} rows, a bad record every {} (client {}; API key {:?} has no package)",
        config.members, config.report_rows, config.bad_every, config.client_name, express_sandbox::NO_PACKAGE_KEY
    );
    let sandbox = Sandbox::new(config);
    sandbox_http::run(
        port,
        port_file,
        |bound| format!("Express sandbox on http://127.0.0.1:{bound}: {banner}"),
        handler(sandbox),
    )
}
