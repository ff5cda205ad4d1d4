output "bucket_name" {
  description = "The bucket whose objects are registered."
  value       = local.bucket_name
}

output "queue_url" {
  description = "The queue the bucket's events wait in."
  value       = aws_sqs_queue.ingest.url
}

output "queue_arn" {
  value = aws_sqs_queue.ingest.arn
}

output "dead_letter_queue_url" {
  description = "Messages that failed max_receive_count times; redrive them once the cause is fixed."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  value = aws_sqs_queue.dead_letter.arn
}

output "function_name" {
  value = aws_lambda_function.ingest.function_name
}

output "function_arn" {
  value = aws_lambda_function.ingest.arn
}

output "function_role_arn" {
  value = aws_iam_role.function.arn
}

output "api_key_secret_arn" {
  description = "Where the Labelbox API key is kept."
  value       = local.secret_arn
}

output "store_api_key_command" {
  description = "Stores (or rotates) the Labelbox API key in the module's secret; the shell prompts for it, and the key never appears on a command line or in the Terraform state."
  value       = local.create_secret ? "read -rsp 'Labelbox API key: ' KEY && printf %s \"$KEY\" | aws secretsmanager put-secret-value --secret-id ${local.secret_arn} --secret-string file:///dev/stdin" : null
}

output "labelbox_role_arn" {
  description = "Paste into Labelbox's AWS integration page (the role ARN field), then validate the integration."
  value       = local.create_labelbox_role ? aws_iam_role.labelbox[0].arn : null
}

output "enable_eventbridge_command" {
  description = "Run once for an existing bucket (needs jq): turns on EventBridge notifications and keeps the bucket's other notifications."
  value       = local.create_bucket ? null : "aws s3api put-bucket-notification-configuration --bucket ${var.existing_bucket_name} --notification-configuration \"$(aws s3api get-bucket-notification-configuration --bucket ${var.existing_bucket_name} --output json | jq -s '(.[0] // {}) + {EventBridgeConfiguration: {}}')\""
}
