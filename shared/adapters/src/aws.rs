//! One place that builds the AWS SDK configuration: standard retries with backoff, timeouts
//! below the functions' own, `AWS_ENDPOINT_URL` honoured (the local emulator), and one HTTP
//! client (connection pool, TLS configuration and root store) shared by every SDK client a
//! function builds, instead of one per service client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub async fn sdk_config() -> SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(8))
                .build(),
        )
        .load()
        .await
}

/// The configuration of a batch job (a nightly sync that has 15 minutes): an operation may take
/// up to 30 s, so an index query over a large partition is not cut off at a webhook's limits.
pub fn batch_config(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder()
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(30))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build()
}
