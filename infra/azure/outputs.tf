output "function_app_name" {
  value = azurerm_function_app_flex_consumption.ingest.name
}

output "function_id" {
  description = "The function Event Grid delivers to."
  value       = local.function_id
}

output "function_identity_client_id" {
  value = azurerm_user_assigned_identity.function.client_id
}

output "system_topic_name" {
  value = local.system_topic_name
}

output "key_vault_uri" {
  value = azurerm_key_vault.this.vault_uri
}

output "set_api_key_command" {
  description = "Stores (or rotates) the Labelbox API key in the vault (needs the Key Vault Secrets Officer role); the shell prompts for it, and the key never appears on a command line or in the Terraform state."
  value       = "read -rsp 'Labelbox API key: ' KEY && printf %s \"$KEY\" > /dev/shm/lbkey && az keyvault secret set --vault-name ${azurerm_key_vault.this.name} --name ${local.secret_name} --file /dev/shm/lbkey --encoding utf-8; rm -f /dev/shm/lbkey"
}

output "dead_letter_container" {
  description = "Where events that failed every delivery are written (one blob per event)."
  value       = "${azurerm_storage_account.runtime.name}/${azurerm_storage_container.dead_letters.name}"
}
