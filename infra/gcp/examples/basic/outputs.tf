output "bucket_name" {
  value = google_storage_bucket.data.name
}

output "function_name" {
  value = module.bucket_ingest.function_name
}

output "add_api_key_command" {
  value = module.bucket_ingest.add_api_key_command
}

output "dead_letter_commands" {
  value = module.bucket_ingest.dead_letter_commands
}
