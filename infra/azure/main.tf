# bucket-ingest on Azure: Blob Storage -> Event Grid system topic -> Function App (Flex Consumption, Python v2
# programming model) -> Labelbox, with dead-lettering to a container. infra/azure/README.md explains it.

data "azurerm_client_config" "current" {}

data "azurerm_eventgrid_system_topic" "existing" {
  count               = var.existing_system_topic_name == null ? 0 : 1
  name                = var.existing_system_topic_name
  resource_group_name = local.storage_account_resource_group
}

locals {
  # /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/NAME
  storage_account_resource_group = split("/", var.storage_account_id)[4]
  storage_account_name           = split("/", var.storage_account_id)[8]
  compact_name                   = substr(replace(var.name, "-", ""), 0, 18)
  runtime_storage_account_name   = coalesce(var.runtime_storage_account_name, "${local.compact_name}app")
  key_vault_name                 = coalesce(var.key_vault_name, "${substr(var.name, 0, 20)}-kv")
  watched_container_id           = "${var.storage_account_id}/blobServices/default/containers/${var.container_name}"
  watch_deletes                  = var.delete_policy != "ignore"
  secret_name                    = "labelbox-api-key"
  # the function as Event Grid addresses it; the name is the one function_app.py declares
  function_id = "${azurerm_function_app_flex_consumption.ingest.id}/functions/on_blob_event"
  # committed blobs only: a block blob when its block list is committed, a copy, an ADLS file when flushed
  created_apis = ["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"]
  deleted_apis = ["DeleteBlob", "DeleteFile"]
  event_types  = local.watch_deletes ? ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"] : ["Microsoft.Storage.BlobCreated"]
  apis         = local.watch_deletes ? concat(local.created_apis, local.deleted_apis) : local.created_apis
  system_topic_name = (
    var.existing_system_topic_name == null ? azurerm_eventgrid_system_topic.storage[0].name : var.existing_system_topic_name
  )
  system_topic_principal_id = (
    var.existing_system_topic_name == null
    ? azurerm_eventgrid_system_topic.storage[0].identity[0].principal_id
    : data.azurerm_eventgrid_system_topic.existing[0].identity[0].principal_id
  )
}

# ---------------------------------------------------------------------------------------------------------------
# The app's own storage: its deployment package, the host's state and the dead letters (never customer data)

resource "azurerm_storage_account" "runtime" {
  #checkov:skip=CKV_AZURE_33:Queue logging: the app uses no queues (its trigger is Event Grid).
  #checkov:skip=CKV_AZURE_206:Replication: the account holds a rebuildable package, host state and dead letters; LRS is enough.
  #checkov:skip=CKV_AZURE_59:The Functions host reaches its storage over the public endpoint (no VNet integration here); access needs the account key, held only by the app.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys add a key vault key and policy for a package and host state; Microsoft-managed encryption applies.
  #checkov:skip=CKV2_AZURE_33:Private endpoints need a VNet for the app (see CKV_AZURE_59).
  #checkov:skip=CKV2_AZURE_40:The Flex Consumption deployment and AzureWebJobsStorage connection the provider writes use the account key.
  #checkov:skip=CKV2_AZURE_41:No SAS is issued for this account: the platform uses its key, Event Grid its identity.
  #checkov:skip=CKV2_AZURE_38:Soft delete keeps deleted blobs; every blob here is rebuildable or, for dead letters, read and then deleted on purpose.
  name                            = local.runtime_storage_account_name
  resource_group_name             = var.resource_group_name
  location                        = var.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  tags                            = var.tags
}

resource "azurerm_storage_container" "deployments" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging for the package container would log the platform's own reads.
  name                  = "deployments"
  storage_account_id    = azurerm_storage_account.runtime.id
  container_access_type = "private"
}

resource "azurerm_storage_container" "dead_letters" {
  #checkov:skip=CKV2_AZURE_21:Blob read logging would log the reads of whoever inspects the dead letters.
  name                  = "dead-letters"
  storage_account_id    = azurerm_storage_account.runtime.id
  container_access_type = "private"
}

# ---------------------------------------------------------------------------------------------------------------
# The API key, in a vault of its own: the app's identity may read its secrets and nothing else

resource "azurerm_user_assigned_identity" "function" {
  name                = "${var.name}-function"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_109:The Flex Consumption app reaches the vault over its public endpoint (no VNet integration here); access is by Entra ID role only.
  #checkov:skip=CKV_AZURE_189:Public network access is how the app reaches the vault without VNet integration (see CKV_AZURE_109).
  #checkov:skip=CKV2_AZURE_32:Private endpoints need a VNet for the app (see CKV_AZURE_109).
  name                       = local.key_vault_name
  resource_group_name        = var.resource_group_name
  location                   = var.location
  tenant_id                  = data.azurerm_client_config.current.tenant_id
  sku_name                   = "standard"
  rbac_authorization_enabled = true
  purge_protection_enabled   = true
  soft_delete_retention_days = 7
  tags                       = var.tags
}

resource "azurerm_role_assignment" "function_reads_secrets" {
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.function.principal_id
  principal_type       = "ServicePrincipal"
}

# Only when Terraform stores the key: whoever runs it may write the vault's secrets
resource "azurerm_role_assignment" "deployer_writes_secrets" {
  count                = var.labelbox_api_key == null ? 0 : 1
  scope                = azurerm_key_vault.this.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = data.azurerm_client_config.current.object_id
}

resource "azurerm_key_vault_secret" "api_key" {
  #checkov:skip=CKV_AZURE_41:Labelbox API keys do not expire on a schedule, and an expired Key Vault secret cannot be read: the ingester would stop. Rotate with set_api_key_command.
  count        = var.labelbox_api_key == null ? 0 : 1
  name         = local.secret_name
  value        = var.labelbox_api_key
  content_type = "text/plain"
  key_vault_id = azurerm_key_vault.this.id
  depends_on   = [azurerm_role_assignment.deployer_writes_secrets]
}

# ---------------------------------------------------------------------------------------------------------------
# The function app

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_225:Zone redundancy of a Flex Consumption app is not a plan setting; the platform places the instances.
  #checkov:skip=CKV_AZURE_212:A consumption plan scales from zero by design; a failover minimum would bill idle instances. Event Grid retries cover a lost instance.
  name                = "${var.name}-plan"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

resource "azurerm_function_app_flex_consumption" "ingest" {
  name                        = "${var.name}-ingest"
  resource_group_name         = var.resource_group_name
  location                    = var.location
  service_plan_id             = azurerm_service_plan.this.id
  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.runtime.primary_blob_endpoint}${azurerm_storage_container.deployments.name}"
  storage_authentication_type = "StorageAccountConnectionString"
  storage_access_key          = azurerm_storage_account.runtime.primary_access_key
  runtime_name                = "python"
  runtime_version             = var.python_version
  maximum_instance_count      = var.maximum_instance_count
  instance_memory_in_mb       = var.instance_memory_in_mb
  https_only                  = true
  # Deployed with the app, before anything subscribes to it (the Event Grid handshake needs the function)
  zip_deploy_file = var.package_path
  tags            = var.tags

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.function.id]
  }

  site_config {
    application_insights_connection_string = var.application_insights_connection_string
  }

  app_settings = {
    INGEST_REGISTRY         = "labelbox://${var.labelbox_dataset_id}"
    LABELBOX_API_KEY_SECRET = "${azurerm_key_vault.this.vault_uri}secrets/${local.secret_name}"
    LABELBOX_ENDPOINT       = var.labelbox_endpoint
    INGEST_DELETE_POLICY    = var.delete_policy
    INGEST_ALLOWED_BUCKETS  = var.container_name
    INGEST_INCLUDE          = join(",", var.include_keys)
    INGEST_EXCLUDE          = join(",", var.exclude_keys)
    # which managed identity reads the key (the app's only one)
    AZURE_CLIENT_ID = azurerm_user_assigned_identity.function.client_id
  }

  # the identity can read the key before the first event arrives
  depends_on = [azurerm_role_assignment.function_reads_secrets]
}

# The host indexes function_app.py after the package lands; Event Grid validates the endpoint when the
# subscription is created, and fails if on_blob_event is not there yet.
resource "time_sleep" "function_indexed" {
  create_duration = var.indexing_wait
  triggers = {
    package = filemd5(var.package_path)
  }
  depends_on = [azurerm_function_app_flex_consumption.ingest]
}

# ---------------------------------------------------------------------------------------------------------------
# Event Grid: the account's system topic, and a subscription for committed blobs of the container

resource "azurerm_eventgrid_system_topic" "storage" {
  count               = var.existing_system_topic_name == null ? 1 : 0
  name                = "${var.name}-${local.storage_account_name}"
  resource_group_name = local.storage_account_resource_group
  location            = coalesce(var.storage_account_location, var.location)
  source_resource_id  = var.storage_account_id
  topic_type          = "Microsoft.Storage.StorageAccounts"
  tags                = var.tags

  identity {
    type = "SystemAssigned" # writes the dead letters
  }
}

resource "azurerm_role_assignment" "topic_writes_dead_letters" {
  scope                = azurerm_storage_container.dead_letters.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.system_topic_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_eventgrid_system_topic_event_subscription" "blobs" {
  name                 = "${var.name}-blobs"
  system_topic         = local.system_topic_name
  resource_group_name  = local.storage_account_resource_group
  included_event_types = local.event_types

  subject_filter {
    subject_begins_with = "/blobServices/default/containers/${var.container_name}/blobs/"
  }

  advanced_filter {
    string_in {
      key    = "data.api"
      values = local.apis
    }
  }

  azure_function_endpoint {
    function_id          = local.function_id
    max_events_per_batch = 1 # the v2 model's Event Grid trigger takes one event per invocation
  }

  retry_policy {
    max_delivery_attempts = var.max_delivery_attempts
    event_time_to_live    = var.event_time_to_live_minutes
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = azurerm_storage_account.runtime.id
    storage_blob_container_name = azurerm_storage_container.dead_letters.name
  }

  depends_on = [time_sleep.function_indexed, azurerm_role_assignment.topic_writes_dead_letters]
}

# ---------------------------------------------------------------------------------------------------------------
# Labelbox's delegated access: a user delegation key for the account, read access to the container

resource "azurerm_role_assignment" "labelbox_delegator" {
  count                = var.labelbox_principal_id == null ? 0 : 1
  scope                = var.storage_account_id
  role_definition_name = "Storage Blob Delegator"
  principal_id         = var.labelbox_principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "labelbox_reader" {
  count                = var.labelbox_principal_id == null ? 0 : 1
  scope                = local.watched_container_id
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = var.labelbox_principal_id
  principal_type       = "ServicePrincipal"
}
