//! The vendor mailer Lambda (the mail queue's consumer): wiring only.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use shipsync_platform::{aws_sdk_config, init_tracing};
use vendor_mailer::{MailerConfig, VendorMailer};

// Lambda hands a container one event at a time: one thread serves it, and starts smaller.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let mailer = VendorMailer::build(&MailerConfig::from_env()?, &aws_sdk_config().await?);
    let mailer = &mailer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(mailer.handle(event.payload).await)
    }))
    .await
}
