output "storage_account_name" {
  value = azurerm_storage_account.data.name
}

output "container_name" {
  value = azurerm_storage_container.data.name
}

output "function_app_name" {
  value = module.bucket_ingest.function_app_name
}

output "set_api_key_command" {
  value = module.bucket_ingest.set_api_key_command
}
