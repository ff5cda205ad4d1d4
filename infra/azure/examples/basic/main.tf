# A new storage account and container whose uploads become Labelbox data rows. After `terraform apply`, store
# the API key with the set_api_key_command output, then upload.

resource "azurerm_resource_group" "this" {
  name     = "${var.name}-rg"
  location = var.location
}

resource "azurerm_storage_account" "data" {
  #checkov:skip=CKV_AZURE_33:Queue logging: the account's queues are not used.
  #checkov:skip=CKV_AZURE_206:Replication is the data owner's choice; the example keeps LRS.
  #checkov:skip=CKV_AZURE_59:Labelbox reads the blobs from its own network (delegated access): the public endpoint stays on, access needs Entra ID roles or a user delegation SAS.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys are the data owner's choice; Microsoft-managed encryption applies.
  #checkov:skip=CKV2_AZURE_33:Private endpoints would hide the blobs from Labelbox (see CKV_AZURE_59).
  #checkov:skip=CKV2_AZURE_40:Shared key access is left on for the example's uploads with az storage blob upload --auth-mode key; turn it off once uploads use Entra ID.
  #checkov:skip=CKV2_AZURE_41:The example issues no SAS; Labelbox signs its own with a user delegation key.
  #checkov:skip=CKV2_AZURE_38:Soft delete is the data owner's choice; the example leaves it off.
  name                            = "${substr(replace(var.name, "-", ""), 0, 20)}data"
  resource_group_name             = azurerm_resource_group.this.name
  location                        = azurerm_resource_group.this.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  account_kind                    = "StorageV2"
  is_hns_enabled                  = false # Labelbox does not support ADLS Gen2
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  local_user_enabled              = false
}

resource "azurerm_storage_container" "data" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging is the data owner's choice.
  name                  = "labelbox"
  storage_account_id    = azurerm_storage_account.data.id
  container_access_type = "private"
}

module "bucket_ingest" {
  source = "../.."

  name                  = var.name
  resource_group_name   = azurerm_resource_group.this.name
  location              = azurerm_resource_group.this.location
  storage_account_id    = azurerm_storage_account.data.id
  container_name        = azurerm_storage_container.data.name
  package_path          = coalesce(var.package_path, "${path.root}/../../../../build/azure.zip")
  labelbox_dataset_id   = var.labelbox_dataset_id
  labelbox_principal_id = var.labelbox_principal_id
}
