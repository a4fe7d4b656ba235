output "base_url" {
  description = "The API's base URL; the APIs live under /functions/v1/."
  value       = aws_apigatewayv2_stage.main.invoke_url
}

output "space_api_url" {
  value = "${trimsuffix(aws_apigatewayv2_stage.main.invoke_url, "/")}/functions/v1/space-api"
}

output "account_api_url" {
  value = "${trimsuffix(aws_apigatewayv2_stage.main.invoke_url, "/")}/functions/v1/account-api"
}

output "mcp_url" {
  value = "${trimsuffix(aws_apigatewayv2_stage.main.invoke_url, "/")}/functions/v1/space-mcp"
}

output "realtime_url" {
  description = "The realtime stream (Server-Sent Events), served through a streaming function URL."
  value       = "${trimsuffix(aws_lambda_function_url.streaming["realtime"].function_url, "/")}/functions/v1/space-realtime"
}

output "analytics_url" {
  description = "Analytics (summaries and streamed exports) with a space key, served through a streaming function URL: API Gateway buffers answers, and exports have no size limit."
  value       = "${trimsuffix(aws_lambda_function_url.streaming["analytics"].function_url, "/")}/functions/v1/space-api/analytics"
}

output "jobs_queue_url" {
  value = aws_sqs_queue.jobs.url
}

output "functions" {
  description = "Function name per manifest entry."
  value       = { for name, function in aws_lambda_function.function : name => function.function_name }
}

output "table_name" {
  value = aws_dynamodb_table.main.name
}

output "media_bucket" {
  value = aws_s3_bucket.media.bucket
}

output "secrets_prefix" {
  value = local.secrets_prefix
}

output "alarm_topic_arn" {
  value = aws_sns_topic.alarms.arn
}
