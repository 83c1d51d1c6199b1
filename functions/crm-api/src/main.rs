use crm_api::{handle, App};
use lambda_http::{run, service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    onecrm_adapters::lambda::init_tracing();
    let sdk = onecrm_adapters::aws::sdk_config().await;
    let app = App::from_env(&sdk)?;
    run(service_fn(|request| handle(&app, request))).await
}
