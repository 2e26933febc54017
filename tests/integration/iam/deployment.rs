//! A test deployment on the moto server that enforces IAM: the table, queues and tenant are set up
//! by an admin, and every function runs with its own IAM user holding exactly the policy the
//! template gives it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use carrier_webhooks::CarrierWebhooks;
use exporter::{Exporter, ExporterConfig};
use order_poller::OrderPoller;
use order_processor::OrderProcessor;
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_domain::export::ExportSettings;
use shipsync_tools::local_aws::{LocalAws, sdk_config_with_key};
use shipsync_tools::moto::{AccessKey, MotoServer};
use shipsync_tools::runner::Runner;
use shopify_webhooks::ShopifyWebhooks;
use sweeper::Sweeper;

use super::policy::{FunctionPolicy, Names, function_policies};
use crate::harness::{TestApp, unique_table};

/// The account and region moto serves by default.
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// The second moto server of this test run: this one enforces IAM on every request. Only this
/// module uses it, so the other tests keep their unauthenticated server.
fn enforcing_moto() -> &'static MotoServer {
    static MOTO: OnceLock<MotoServer> = OnceLock::new();
    MOTO.get_or_init(|| {
        MotoServer::start_enforcing_iam_blocking(0).unwrap_or_else(|error| panic!("moto with IAM: {error}"))
    })
}

fn admin_key() -> &'static AccessKey {
    enforcing_moto().admin.as_ref().expect("the enforcing moto reports its admin key")
}

pub async fn admin_config() -> aws_config::SdkConfig {
    let admin = admin_key();
    sdk_config_with_key(&enforcing_moto().endpoint, &admin.id, &admin.secret).await
}

/// A policy change for a negative test: this function's policy without this action.
pub type Without = Option<(&'static str, &'static str)>;

/// A tenant (as `TestApp`) whose functions each run as their template's IAM user, and the
/// AWS clients of each function by package name.
pub struct IamApp {
    pub app: TestApp,
    functions: BTreeMap<String, LocalAws>,
}

fn queue_arn(url: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{}", url.rsplit('/').next().unwrap_or_default())
}

/// What the template's references mean in this deployment.
fn names(aws: &LocalAws) -> Names {
    let planner = &aws.planner;
    Names(BTreeMap::from(
        [
            ("AWS::Partition", "aws".to_owned()),
            ("AWS::Region", REGION.to_owned()),
            ("AWS::AccountId", ACCOUNT.to_owned()),
            ("Table.Arn", format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", aws.table.table_name())),
            ("ExportQueue.Arn", aws.export_queue_arn.clone()),
            ("Exporter.Arn", planner.exporter_arn.clone()),
            ("ExportDeadLetterQueue.Arn", queue_arn(&aws.export_dead_letter_url)),
            ("ScheduleDeadLetterQueue.Arn", planner.schedule_dead_letter_arn.clone()),
            ("OrderQueue.Arn", aws.order_queue_arn.clone()),
            ("OrderDeadLetterQueue.Arn", queue_arn(&aws.order_dead_letter_url)),
            ("RenderQueue.Arn", aws.render_queue_arn.clone()),
            ("MailQueue.Arn", aws.mail_queue_arn.clone()),
            ("ExportScheduleGroup", planner.schedule_group.clone()),
            ("SchedulerRole.Arn", planner.scheduler_role_arn.clone()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    ))
}

/// Creates an IAM user with exactly `document` as its policy and returns its access key.
async fn create_user(iam: &aws_sdk_iam::Client, name: &str, document: &str) -> AccessKey {
    iam.create_user().user_name(name).send().await.unwrap_or_else(|error| panic!("create user {name}: {error:?}"));
    iam.put_user_policy()
        .user_name(name)
        .policy_name("template")
        .policy_document(document)
        .send()
        .await
        .unwrap_or_else(|error| panic!("policy of {name}: {error:?}\n{document}"));
    let created = iam.create_access_key().user_name(name).send().await.expect("access key");
    let key = created.access_key().expect("access key");
    AccessKey { id: key.access_key_id().to_owned(), secret: key.secret_access_key().to_owned() }
}

/// SDK settings signed as a new user that holds exactly `policy`.
pub async fn client_for_policy(user: &str, policy: &serde_json::Value) -> aws_config::SdkConfig {
    let iam = aws_sdk_iam::Client::new(&admin_config().await);
    let key = create_user(&iam, user, &policy.to_string()).await;
    sdk_config_with_key(&enforcing_moto().endpoint, &key.id, &key.secret).await
}

impl IamApp {
    /// A fresh table, queues and tenant (by the admin) whose Shopify store has these settings
    /// and address, and every template function as its own IAM user (less `without`).
    pub async fn new(export: ExportSettings, shopify: Option<&str>, without: Without) -> Self {
        let admin = admin_config().await;
        let table = unique_table();
        let admin_aws = LocalAws::provision_with(&admin, &table, 1).await.expect("resources, as the admin");
        let admin_app = TestApp::on_aws(admin_aws.clone(), export, shopify).await;
        let iam = aws_sdk_iam::Client::new(&admin);
        let names = names(&admin_aws);
        let mut functions = BTreeMap::new();
        let policies = function_policies();
        if let Some((package, action)) = without {
            assert!(policies.iter().any(|p| p.package == package), "no function {package} in the template ({action})");
        }
        for policy in policies {
            let policy: FunctionPolicy = match without {
                Some((package, action)) if package == policy.package => policy.without(action),
                _ => policy,
            };
            let key = create_user(&iam, &format!("{}-{table}", policy.package), &policy.moto_document(&names)).await;
            let config = sdk_config_with_key(&enforcing_moto().endpoint, &key.id, &key.secret).await;
            functions.insert(policy.package.clone(), admin_aws.with_sdk_config(&config));
        }
        let mut iam_app = Self { app: admin_app, functions };
        iam_app.rewire();
        iam_app
    }

    /// The AWS clients of a function of the template, signed as its user.
    pub fn aws_of(&self, package: &str) -> &LocalAws {
        self.functions.get(package).unwrap_or_else(|| panic!("no function {package} in infra/template.yaml"))
    }

    /// Rebuilds the tenant's functions on their own users' clients, wired as the harness's
    /// `for_retailer` and each function's main.rs wire them: the API on an encrypt-only store,
    /// the exporter, poller and Shopify webhooks on a store that opens credentials (each with its
    /// own user's KMS client), the rest without a cipher; channel calls go to the stores'
    /// base_url (the local fakes). What AWS itself does (firing schedules, feeding queues) stays
    /// with the admin's runner.
    fn rewire(&mut self) {
        let reading = Arc::clone(&self.app.clock);
        let now: shipsync_domain::time::Clock =
            Arc::new(move || *reading.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let endpoints = ChannelEndpoints::honouring_store_overrides();
        // Each built by its own `build`, as its main.rs builds it, on its own user's clients.
        let api = self.aws_of("shipments-api");
        let planner = api.export_planner();
        let api = ShipmentsApi::build(&api.api_config(), &api.sdk).with_clock(Arc::clone(&now));
        let exporter = self.aws_of("exporter");
        // As deployed (its role's credentials), with channel calls cut at 2 s.
        let config =
            ExporterConfig { channel_timeout: std::time::Duration::from_secs(2), ..exporter.exporter_config() };
        let exporter = Exporter::build(&config, &exporter.sdk)
            .expect("exporter")
            .with_clock(Arc::clone(&now))
            .with_endpoints(endpoints);
        let processor = self.aws_of("order-processor");
        let processor =
            OrderProcessor::build(&processor.processor_config(), &processor.sdk).with_clock(Arc::clone(&now));
        let webhooks = self.aws_of("shopify-webhooks");
        let webhooks = ShopifyWebhooks::build(&webhooks.intake_config(), &webhooks.sdk).with_clock(Arc::clone(&now));
        let poller = self.aws_of("order-poller");
        let poller = OrderPoller::build(&poller.intake_config(), &poller.sdk)
            .expect("poller")
            .with_clock(Arc::clone(&now))
            .with_endpoints(endpoints);
        let sweeper = self.aws_of("sweeper");
        let sweeper = Sweeper::build(&sweeper.sweeper_config(), &sweeper.sdk).with_clock(now);
        let renderer = self.aws_of("label-renderer");
        let renderer = label_renderer::LabelRenderer::build(&renderer.renderer_config(), &renderer.sdk);
        let mailer = self.aws_of("vendor-mailer");
        let mailer = vendor_mailer::VendorMailer::build(&mailer.mailer_config(), &mailer.sdk);
        let runner = Runner::new(self.app.aws.clone(), exporter, processor)
            .with_sweeper(sweeper)
            .with_renderer(renderer)
            .with_mailer(mailer);
        let app = &mut self.app;
        (app.api, app.planner, app.webhooks, app.poller, app.runner) = (api, planner, webhooks, poller, runner);
    }

    /// The carrier webhook endpoint, as its user.
    pub fn carrier_webhooks(&self) -> CarrierWebhooks {
        let aws = self.aws_of("carrier-webhooks");
        CarrierWebhooks::build(&aws.intake_config(), &aws.sdk)
    }
}
