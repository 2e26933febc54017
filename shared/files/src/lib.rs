//! Where label files go: a private S3 bucket (each object encrypted at rest, reached only by
//! links presigned for a few minutes by the function's own role), and the queue that hands HTML
//! labels to the renderer.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use shipsync_app::Failure;
use shipsync_app::ports::{LabelFiles, RenderQueue};
use shipsync_domain::labels::RenderRequest;

/// The labels bucket.
#[derive(Debug, Clone)]
pub struct LabelBucket {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl LabelBucket {
    /// The bucket through the SDK settings a function runs with. An emulator's endpoint (the
    /// local stack, the tests) is reached by path (`http://host/bucket/key`), as it serves no
    /// bucket host names; AWS is reached by the bucket's own host name.
    pub fn connect(aws: &aws_config::SdkConfig, bucket: &str) -> Self {
        let config = aws_sdk_s3::config::Builder::from(aws).force_path_style(aws.endpoint_url().is_some()).build();
        Self { client: aws_sdk_s3::Client::from_conf(config), bucket: bucket.to_owned() }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn name(&self) -> &str {
        &self.bucket
    }
}

fn unavailable(operation: &'static str) -> impl FnOnce(String) -> Failure {
    move |detail| Failure::retryable(format!("S3 {operation}: {detail}"))
}

impl LabelFiles for LabelBucket {
    async fn put_file(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Failure> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Encrypted at rest whatever the bucket's default says.
            .server_side_encryption(ServerSideEncryption::Aes256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| unavailable("PutObject")(format!("{error:?}")))?;
        Ok(())
    }

    async fn get_file(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let output = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(error) => return Err(unavailable("GetObject")(format!("{error:?}"))),
        };
        let body = output.body.collect().await.map_err(|error| unavailable("GetObject")(error.to_string()))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn delete_file(&self, key: &str) -> Result<(), Failure> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| unavailable("DeleteObject")(format!("{error:?}")))?;
        Ok(())
    }

    /// Signed here, with no call: the link carries the role's right to read the object, for
    /// `seconds` only.
    async fn download_link(&self, key: &str, seconds: u64) -> Result<String, Failure> {
        let config = PresigningConfig::expires_in(Duration::from_secs(seconds))
            .map_err(|error| Failure::permanent(format!("a download link for {seconds} s: {error}")))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|error| unavailable("presigning GetObject")(format!("{error:?}")))?;
        Ok(presigned.uri().to_owned())
    }
}

/// The renderer's queue.
#[derive(Debug, Clone)]
pub struct RenderQueueSqs {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl RenderQueueSqs {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { sqs, queue_url }
    }
}

impl RenderQueue for RenderQueueSqs {
    async fn queue_render(&self, request: &RenderRequest) -> Result<(), Failure> {
        let body = serde_json::to_string(request).map_err(|error| Failure::permanent(error.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|error| Failure::retryable(format!("SQS SendMessage (render queue): {error:?}")))?;
        Ok(())
    }
}
