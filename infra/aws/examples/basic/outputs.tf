output "bucket_name" {
  value = module.bucket_ingest.bucket_name
}

output "queue_url" {
  value = module.bucket_ingest.queue_url
}

output "dead_letter_queue_url" {
  value = module.bucket_ingest.dead_letter_queue_url
}

output "function_name" {
  value = module.bucket_ingest.function_name
}

output "store_api_key_command" {
  value = module.bucket_ingest.store_api_key_command
}

output "labelbox_role_arn" {
  value = module.bucket_ingest.labelbox_role_arn
}
