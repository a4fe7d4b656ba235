# One function per manifest entry: the zip `make build` made, its own role with exactly the
# permissions the manifest lists, its own encrypted log group.

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  name              = "/aws/lambda/${local.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${local.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  # X-Ray has no resource-level permissions for writing segments.
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # Exactly the manifest's permissions: table items, the space-api/<stage>/ secrets (write
  # only), the media bucket — each on its own ARNs.
  dynamic "statement" {
    for_each = each.value.permissions

    content {
      sid       = replace(title(replace(statement.value.resource, "_", " ")), " ", "")
      actions   = statement.value.actions
      resources = local.resource_arns[statement.value.resource]
    }
  }

  # The stage key, only through the services of the resources the function uses.
  dynamic "statement" {
    for_each = length(local.function_kms_services[each.key]) > 0 ? [1] : []

    content {
      sid       = "StageKeyThroughItsServices"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
      resources = [aws_kms_key.main.arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [for service in local.function_kms_services[each.key] : "${service}.${var.region}.amazonaws.com"]
      }
    }
  }
}

locals {
  function_kms_services = {
    for name, function in local.functions : name => distinct(compact([
      for permission in function.permissions : lookup(local.kms_services, permission.resource, "")
    ]))
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${local.name}-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously (API Gateway, the realtime URL) or by event source mappings, whose failures go to their own queues (infra/worker.tf); nothing is invoked asynchronously, so there is nothing to dead-letter.
  #checkov:skip=CKV_AWS_117:The functions reach only AWS APIs (DynamoDB, Secrets Manager, S3) over TLS with IAM auth; a VPC would add NAT or endpoint cost and cold-start time for no private resource.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile and signed S3 artifacts; the zips come from `make build` in CI and are pinned by source_code_hash.
  for_each = local.functions

  function_name = "${local.name}-${each.key}"
  description   = "Space API ${each.key} (${length(each.value.routes)} routes)"
  role          = aws_iam_role.function[each.key].arn

  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  filename         = "${var.artifacts_dir}/${each.value.binary}/bootstrap.zip"
  source_code_hash = filebase64sha256("${var.artifacts_dir}/${each.value.binary}/bootstrap.zip")

  memory_size = var.memory_size
  # A stream lasts up to 14 minutes (Lambda's limit is 15); the dispatcher waits on webhook
  # endpoints (15 s each); an API request is answered in well under the default.
  timeout = (contains(each.value.triggers, "streaming_url") ? 900
    : contains(each.value.triggers, "jobs_queue") ? var.worker_timeout_seconds
  : var.timeout_seconds)
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.main.arn

  environment {
    variables = merge(
      { RUST_LOG = var.log_level },
      { for name in each.value.env : name => local.env_values[name] },
    )
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_permission" "api" {
  for_each = local.routed_functions

  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.main.execution_arn}/*/*"
}
