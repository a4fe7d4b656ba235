# Delivery receipts (the `receipts` function).
#
# Every SES send names the mail configuration set and every SMS send the SMS configuration
# set (MAIL_CONFIGURATION_SET, SMS_CONFIGURATION_SET in the dispatcher's environment). Their
# event destinations publish to one SNS topic; its subscription delivers each event raw
# (the event itself, no SNS envelope; the function reads both) to the receipts queue,
# which invokes the functions whose manifest `triggers` name `receipts_queue`. Each event
# names its message (SES: the `space_id` / `message_id` tags; SMS: the same keys in the
# message's context) and becomes that family's receipt job on the worker.

locals {
  receipts_consumers = { for name, function in local.functions : name => function if contains(function.triggers, "receipts_queue") }
}

resource "aws_sns_topic" "receipts" {
  name              = "${local.name}-receipts"
  kms_master_key_id = aws_kms_key.main.id
}

# SES and End User Messaging publish here, for this account's configuration sets only.
data "aws_iam_policy_document" "receipts_topic" {
  statement {
    sid       = "SesEventsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.receipts.arn]

    principals {
      type        = "Service"
      identifiers = ["ses.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ses:${var.region}:${local.account_id}:configuration-set/${aws_sesv2_configuration_set.mail.configuration_set_name}"]
    }
  }

  statement {
    sid       = "SmsEventsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.receipts.arn]

    principals {
      type        = "Service"
      identifiers = ["sms-voice.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "receipts" {
  arn    = aws_sns_topic.receipts.arn
  policy = data.aws_iam_policy_document.receipts_topic.json
}

# A message the function keeps failing to enqueue (5 receives: the table is unreachable)
# moves to the dead-letter queue and raises an alarm. Events it cannot read are dropped by
# the function itself, logged, so they never wait here.
resource "aws_sqs_queue" "receipts" {
  name                       = "${local.name}-receipts"
  kms_master_key_id          = aws_kms_key.main.id
  visibility_timeout_seconds = 6 * var.timeout_seconds
  message_retention_seconds  = 4 * 24 * 3600

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.receipts_dead.arn
    maxReceiveCount     = 5
  })
}

resource "aws_sqs_queue" "receipts_dead" {
  name                      = "${local.name}-receipts-dead"
  kms_master_key_id         = aws_kms_key.main.id
  message_retention_seconds = 14 * 24 * 3600
}

data "aws_iam_policy_document" "receipts_queue" {
  statement {
    sid       = "TheReceiptsTopicOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.receipts.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.receipts.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "receipts" {
  queue_url = aws_sqs_queue.receipts.id
  policy    = data.aws_iam_policy_document.receipts_queue.json
}

# Raw delivery: the queue holds the events as the providers wrote them.
resource "aws_sns_topic_subscription" "receipts" {
  topic_arn            = aws_sns_topic.receipts.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.receipts.arn
  raw_message_delivery = true
}

resource "aws_lambda_event_source_mapping" "receipts" {
  for_each = local.receipts_consumers

  function_name           = aws_lambda_function.function[each.key].arn
  event_source_arn        = aws_sqs_queue.receipts.arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]
}

# Mail: what SES reports of the messages sent through this set. Only what moves a message:
# hard and soft bounces (the function tells them apart), complaints, deliveries, and
# rejections (logged, nothing to move).
resource "aws_sesv2_configuration_set" "mail" {
  configuration_set_name = "${local.name}-mail"

  # Mail leaves over TLS only: SES does not deliver to a receiving server that offers none
  # rather than fall back to sending in the clear.
  delivery_options {
    tls_policy = "REQUIRE"
  }

  reputation_options {
    reputation_metrics_enabled = true
  }

  sending_options {
    sending_enabled = true
  }
}

resource "aws_sesv2_configuration_set_event_destination" "mail" {
  configuration_set_name = aws_sesv2_configuration_set.mail.configuration_set_name
  event_destination_name = "receipts"

  event_destination {
    enabled              = true
    matching_event_types = ["BOUNCE", "COMPLAINT", "DELIVERY", "REJECT"]

    sns_destination {
      topic_arn = aws_sns_topic.receipts.arn
    }
  }

  depends_on = [aws_sns_topic_policy.receipts]
}

# SMS: the carriers' final word on the messages sent through this set.
resource "aws_pinpointsmsvoicev2_configuration_set" "sms" {
  name                 = "${local.name}-sms"
  default_message_type = "TRANSACTIONAL"
}

resource "aws_pinpointsmsvoicev2_event_destination" "sms" {
  configuration_set_name = aws_pinpointsmsvoicev2_configuration_set.sms.name
  event_destination_name = "receipts"
  enabled                = true
  matching_event_types = [
    "TEXT_DELIVERED",
    "TEXT_SUCCESSFUL",
    "TEXT_BLOCKED",
    "TEXT_CARRIER_BLOCKED",
    "TEXT_SPAM",
    "TEXT_TTL_EXPIRED",
    "TEXT_CARRIER_UNREACHABLE",
    "TEXT_UNREACHABLE",
    "TEXT_INVALID",
    "TEXT_INVALID_MESSAGE",
  ]

  sns_destination {
    topic_arn = aws_sns_topic.receipts.arn
  }

  depends_on = [aws_sns_topic_policy.receipts]
}
