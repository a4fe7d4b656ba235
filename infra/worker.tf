# Later work (the `dispatcher` function) and the realtime stream (the `realtime` function).
#
# A change writes its jobs in its own transaction. The table's stream shows the dispatcher
# each new item: a job is sent to the jobs queue with a delay of up to 15 minutes, or to a
# one-time EventBridge Scheduler schedule (named after the job, deleted once it fired) that
# sends the same message later; new events start the webhook fan-out. The queue hands each
# message to the dispatcher, which claims and runs the job. Which functions these triggers
# reach comes from the manifest (`triggers`), like everything else per function.

locals {
  stream_consumers = { for name, function in local.functions : name => function if contains(function.triggers, "table_stream") }
  queue_consumers  = { for name, function in local.functions : name => function if contains(function.triggers, "jobs_queue") }
  streaming_urls   = { for name, function in local.functions : name => function if contains(function.triggers, "streaming_url") }
}

# The jobs queue. A message that keeps failing (5 receives) moves to the dead-letter queue
# and raises an alarm; the job item itself stays in the table, so nothing is lost.
resource "aws_sqs_queue" "jobs" {
  name                       = "${local.name}-jobs"
  kms_master_key_id          = aws_kms_key.main.id
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds
  message_retention_seconds  = 4 * 24 * 3600

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.jobs_dead.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "jobs_dead" {
  name                      = "${local.name}-jobs-dead"
  kms_master_key_id         = aws_kms_key.main.id
  message_retention_seconds = 14 * 24 * 3600
}

# Stream batches that still fail after their retries: their position, for a replay.
resource "aws_sqs_queue" "stream_failures" {
  name                      = "${local.name}-stream-failures"
  kms_master_key_id         = aws_kms_key.main.id
  message_retention_seconds = 14 * 24 * 3600
}

resource "aws_lambda_event_source_mapping" "stream" {
  for_each = local.stream_consumers

  function_name     = aws_lambda_function.function[each.key].arn
  event_source_arn  = aws_dynamodb_table.main.stream_arn
  starting_position = "LATEST"
  batch_size        = 100
  # A failing batch is split in two until the bad record is alone; the answer names the
  # first failed record, and the stream resumes there.
  bisect_batch_on_function_error = true
  maximum_retry_attempts         = 10
  maximum_record_age_in_seconds  = 6 * 3600
  function_response_types        = ["ReportBatchItemFailures"]

  # New items (jobs, and events for the fan-out), and jobs withdrawn before their time,
  # whose schedules go with them.
  filter_criteria {
    filter {
      pattern = jsonencode({ eventName = ["INSERT"] })
    }
    filter {
      pattern = jsonencode({ eventName = ["REMOVE"], dynamodb = { Keys = { pk = { S = [{ prefix = "JOBS#" }] } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.stream_failures.arn
    }
  }
}

resource "aws_lambda_event_source_mapping" "jobs" {
  for_each = local.queue_consumers

  function_name           = aws_lambda_function.function[each.key].arn
  event_source_arn        = aws_sqs_queue.jobs.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.worker_concurrency
  }
}

resource "aws_scheduler_schedule_group" "jobs" {
  name = "${local.name}-jobs"
}

# The role schedules send their message with: to the jobs queue, nothing else.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${local.name}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "SendToTheJobsQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "StageKeyThroughSqs"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${local.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

# The realtime stream and analytics' exports: API Gateway's HTTP APIs buffer a response
# until it ends, so these functions have a function URL that streams instead. Each checks
# the key itself. The owner's console (served by the API, another origin) follows the
# realtime stream from the browser with the key in a header: CORS allows the API's origin.
resource "aws_lambda_function_url" "streaming" {
  #checkov:skip=CKV_AWS_258:The URL serves API clients holding a Space API key, which the function checks (scopes, revocation) on every stream, as API Gateway's routes do.
  for_each = local.streaming_urls

  function_name      = aws_lambda_function.function[each.key].function_name
  authorization_type = "NONE"
  invoke_mode        = "RESPONSE_STREAM"

  cors {
    allow_origins = [aws_apigatewayv2_api.main.api_endpoint]
    allow_methods = ["GET"]
    allow_headers = ["authorization", "accept", "last-event-id"]
    max_age       = 3600
  }
}

# Where the console finds the realtime stream: the function URL exists only once the
# functions do, so it cannot be in their environment; the account API reads it from this
# item of the table (without it, as `spacectl serve` runs, the stream is beside the API).
resource "aws_dynamodb_table_item" "realtime_url" {
  table_name = aws_dynamodb_table.main.name
  hash_key   = aws_dynamodb_table.main.hash_key
  range_key  = aws_dynamodb_table.main.range_key
  item = jsonencode({
    pk   = { S = "PLATFORM" }
    sk   = { S = "REALTIME_URL" }
    v    = { N = "1" }
    body = { M = { url = { S = "${trimsuffix(aws_lambda_function_url.streaming["realtime"].function_url, "/")}/functions/v1/space-realtime" } } }
  })
}

resource "aws_lambda_permission" "streaming_url" {
  #checkov:skip=CKV_AWS_301:The realtime URL is public like the API's routes: the function answers only a valid Space API key with events:read.
  for_each = local.streaming_urls

  statement_id           = "AllowFunctionUrl"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.function[each.key].function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

# Since October 2025 a URL also needs InvokeFunction, limited here to calls through it.
resource "aws_lambda_permission" "streaming_url_invoke" {
  #checkov:skip=CKV_AWS_301:Invocation is limited to calls through the function URL (invoked_via_function_url), which checks the key as above.
  for_each = local.streaming_urls

  statement_id             = "AllowInvokeThroughFunctionUrl"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.function[each.key].function_name
  principal                = "*"
  invoked_via_function_url = true
}

# Work that waits: a dead job message, a stream batch given up on, a stream falling behind,
# a queue whose oldest message is old.
resource "aws_cloudwatch_metric_alarm" "jobs_dead" {
  for_each = {
    jobs_dead       = aws_sqs_queue.jobs_dead.name
    stream_failures = aws_sqs_queue.stream_failures.name
    receipts_dead   = aws_sqs_queue.receipts_dead.name
  }

  alarm_name          = "${local.name}-${replace(each.key, "_", "-")}"
  alarm_description   = "${each.value}: messages that could not be processed; inspect and replay them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "jobs_waiting" {
  alarm_name          = "${local.name}-jobs-waiting"
  alarm_description   = "The jobs queue's oldest message waited over 5 minutes: the dispatcher is behind or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.jobs.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "stream_behind" {
  for_each = local.stream_consumers

  alarm_name          = "${local.name}-${each.key}-stream-behind"
  alarm_description   = "${each.key}: the table's stream is over a minute behind (webhooks and jobs wait)."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.function[each.key].function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = 60000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
