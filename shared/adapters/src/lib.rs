//! Adapters: the AWS (DynamoDB, SQS, Secrets Manager) and Lambda implementations of the
//! domain's ports, plus the process-wide setup every function shares.

pub mod aws;
pub mod backoff;
pub mod cache;
pub mod config;
pub mod dead_letters;
pub mod dynamodb;
pub mod lambda;
pub mod partner;
pub mod secrets;
pub mod sqs;
pub mod system;
pub mod wiring;
