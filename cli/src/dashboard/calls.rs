//! Counts every AWS request the dashboard makes (each attempt, retries included), so the page and the
//! operator see what one refresh costs: an SDK interceptor on each of the dashboard's clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sqs::error::BoxError;

#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<AtomicU64>);

impl CallCounter {
    /// The requests sent so far.
    pub fn total(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "nexus-dashboard-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The dashboard's AWS clients, each counting its requests on one counter.
#[derive(Debug, Clone)]
pub struct Clients {
    pub counter: CallCounter,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub sns: aws_sdk_sns::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let counter = CallCounter::default();
        // One builder per service: each SDK crate has its own config type, all taking the same interceptor.
        macro_rules! counted {
            ($sdk:ident) => {
                $sdk::Client::from_conf($sdk::config::Builder::from(config).interceptor(counter.clone()).build())
            };
        }
        Self {
            dynamodb: counted!(aws_sdk_dynamodb),
            sqs: counted!(aws_sdk_sqs),
            sfn: counted!(aws_sdk_sfn),
            sns: counted!(aws_sdk_sns),
            cloudwatch: counted!(aws_sdk_cloudwatch),
            logs: counted!(aws_sdk_cloudwatchlogs),
            counter,
        }
    }
}
