# The Space API for one stage: one Lambda function per entry of manifest.json (generated
# by `spacectl manifest` from the catalogue, kept current by a test), behind one HTTP API,
# over one DynamoDB table, one media bucket and Secrets Manager under space-api/<stage>/.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name           = "space-api-${var.stage}"
  account_id     = data.aws_caller_identity.current.account_id
  partition      = data.aws_partition.current.partition
  secrets_prefix = "space-api/${var.stage}"
  # Webhook signing keys: a sibling of the secret values' prefix, so the grant that writes
  # secret values never covers them and the grant that reads these covers nothing else.
  signing_prefix = "space-api/${var.stage}-signing"

  manifest  = jsondecode(file("${path.module}/manifest.json"))
  functions = { for function in local.manifest.functions : function.name => function }
  # Route key => function name. The manifest test guarantees each key appears once.
  # Functions API Gateway sends routes to (the dispatcher and the realtime stream have none).
  routed_functions = { for name, function in local.functions : name => function if length(function.routes) > 0 }
  routes           = merge([for function in local.manifest.functions : { for route in function.routes : route => function.name }]...)

  # The ARNs behind each resource name a manifest permission uses.
  resource_arns = {
    table         = [aws_dynamodb_table.main.arn]
    secret_values = ["arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.secrets_prefix}/*"]
    signing_keys  = ["arn:${local.partition}:secretsmanager:${var.region}:${local.account_id}:secret:${local.signing_prefix}/*"]
    # ListSecrets (names and metadata, never values) has no resource-level permission; a
    # Space's purge lists its secrets with it, then deletes each by its prefixed ARN.
    secret_names  = ["*"]
    media_bucket  = [aws_s3_bucket.media.arn]
    media_objects = ["${aws_s3_bucket.media.arn}/*"]
    # The table's stream: Lambda's event source mapping reads it with the function's role.
    table_stream    = ["${aws_dynamodb_table.main.arn}/stream/*"]
    jobs_queue      = [aws_sqs_queue.jobs.arn]
    stream_failures = [aws_sqs_queue.stream_failures.arn]
    job_schedules   = ["arn:${local.partition}:scheduler:${var.region}:${local.account_id}:schedule/${aws_scheduler_schedule_group.jobs.name}/*"]
    scheduler_role  = [aws_iam_role.scheduler.arn]
    # The phone numbers SMS go out from (End User Messaging's origination identities).
    sms_numbers = ["arn:${local.partition}:sms-voice:${var.region}:${local.account_id}:phone-number/*"]
    # The SMS configuration set every send names (its events are the receipts).
    sms_configuration_set = [aws_pinpointsmsvoicev2_configuration_set.sms.arn]
    # The SES identities (addresses and domains) mail goes out from.
    mail_identities = ["arn:${local.partition}:ses:${var.region}:${local.account_id}:identity/*"]
    # The SES configuration set every send names (its events are the receipts).
    mail_configuration_set = ["arn:${local.partition}:ses:${var.region}:${local.account_id}:configuration-set/${aws_sesv2_configuration_set.mail.configuration_set_name}"]
    # Where the providers' events arrive, through SNS.
    receipts_queue = [aws_sqs_queue.receipts.arn]
  }

  # Resources encrypted with the stage key, and the service that uses it on a caller's behalf.
  kms_services = {
    table           = "dynamodb"
    media_bucket    = "s3"
    media_objects   = "s3"
    table_stream    = "dynamodb"
    jobs_queue      = "sqs"
    stream_failures = "sqs"
    receipts_queue  = "sqs"
  }

  # The value of every environment variable a manifest entry may ask for.
  env_values = {
    TABLE_NAME          = aws_dynamodb_table.main.name
    CURSOR_SECRET       = random_password.cursor.result
    SECRETS_PREFIX      = local.secrets_prefix
    SIGNING_KEYS_PREFIX = local.signing_prefix
    MEDIA_BUCKET        = aws_s3_bucket.media.bucket
    MCP_ALLOWED_HOSTS   = replace(aws_apigatewayv2_api.main.api_endpoint, "https://", "")
    JOBS_QUEUE_URL      = aws_sqs_queue.jobs.url
    JOBS_QUEUE_ARN      = aws_sqs_queue.jobs.arn
    SCHEDULE_GROUP      = aws_scheduler_schedule_group.jobs.name
    SCHEDULER_ROLE_ARN  = aws_iam_role.scheduler.arn
    # The configuration sets sends name, so that the providers report back (receipts.tf).
    MAIL_CONFIGURATION_SET = aws_sesv2_configuration_set.mail.configuration_set_name
    SMS_CONFIGURATION_SET  = aws_pinpointsmsvoicev2_configuration_set.sms.name
    # The origin of the absolute links the API hands out (feeds, published and booking
    # pages, uploads): the API's own endpoint, whose one stage (`$default`) is its root.
    PUBLIC_URL = aws_apigatewayv2_api.main.api_endpoint
  }
}

# The secret pagination cursors are sealed with (the cipher's key is derived from it).
# Generated here, so it is in no file and no shell history; it lives in the Terraform state
# (keep that private) and in the functions' environment, encrypted with the stage key.
resource "random_password" "cursor" {
  length  = 48
  special = false

  keepers = {
    generation = var.cursor_secret_generation
  }
}
