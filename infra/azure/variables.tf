variable "name" {
  description = "Prefix of every resource name. Lowercase letters, digits and hyphens, starting with a letter."
  type        = string
  default     = "bucket-ingest"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name: use 2 to 31 lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "resource_group_name" {
  description = "Existing resource group for the function app, its storage, Key Vault and Event Grid topic."
  type        = string
}

variable "location" {
  description = "Azure region (one that offers Flex Consumption)."
  type        = string
}

variable "storage_account_id" {
  description = "Resource id of the existing storage account whose container is watched (general-purpose v2 or BlobStorage; Labelbox does not support ADLS Gen2)."
  type        = string

  validation {
    condition     = can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Storage/storageAccounts/[a-z0-9]{3,24}$", var.storage_account_id))
    error_message = "storage_account_id: the account's resource id, /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/NAME."
  }
}

variable "storage_account_location" {
  description = "Region of that storage account, where its Event Grid system topic lives (null: location)."
  type        = string
  default     = null
}

variable "container_name" {
  description = "The container whose blobs are registered."
  type        = string
}

variable "existing_system_topic_name" {
  description = "An account has at most one Event Grid system topic. null: the module creates it. A name: the account's existing topic (in the account's resource group), which must have a system-assigned identity for dead-lettering."
  type        = string
  default     = null
}

variable "package_path" {
  description = "The function app's package: build/azure.zip from `make package` (function_app.py, host.json, handlers/, shared/, .python_packages/)."
  type        = string
}

variable "python_version" {
  description = "Python of the function app; build/azure.zip is built for 3.11."
  type        = string
  default     = "3.11"
}

variable "labelbox_dataset_id" {
  description = "Labelbox dataset that receives the rows."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]+$", var.labelbox_dataset_id))
    error_message = "labelbox_dataset_id: a Labelbox dataset id has letters and digits only."
  }
}

variable "labelbox_api_key" {
  description = "Labelbox API key, stored in the module's Key Vault. It also lands in the Terraform state: prefer null, then store the key with the set_api_key_command output."
  type        = string
  default     = null
  sensitive   = true
}

variable "labelbox_endpoint" {
  description = "Labelbox GraphQL endpoint."
  type        = string
  default     = "https://api.labelbox.com/graphql"
}

variable "delete_policy" {
  description = "What deleting a blob does to its row: ignore, tag or delete. tag and delete also subscribe to BlobDeleted."
  type        = string
  default     = "ignore"

  validation {
    condition     = contains(["ignore", "tag", "delete"], var.delete_policy)
    error_message = "delete_policy: use ignore, tag or delete."
  }
}

variable "include_keys" {
  description = "Blob name globs; when not empty, only matching blobs register (INGEST_INCLUDE)."
  type        = list(string)
  default     = []
}

variable "exclude_keys" {
  description = "Blob name globs never registered (INGEST_EXCLUDE)."
  type        = list(string)
  default     = []
}

variable "maximum_instance_count" {
  description = "Most instances the app scales to: keeps it inside the organisation's Labelbox request budget."
  type        = number
  default     = 5
}

variable "instance_memory_in_mb" {
  description = "Memory of one instance (2048 or 4096)."
  type        = number
  default     = 2048
}

variable "max_delivery_attempts" {
  description = "Event Grid deliveries of an event before it is dead-lettered (1 to 30)."
  type        = number
  default     = 30
}

variable "event_time_to_live_minutes" {
  description = "How long Event Grid keeps retrying an event before it is dead-lettered (1 to 1440)."
  type        = number
  default     = 1440
}

variable "indexing_wait" {
  description = "Pause between deploying the app and subscribing it to Event Grid, so the host has indexed on_blob_event before Event Grid's validation handshake reaches it."
  type        = string
  default     = "60s"
}

variable "application_insights_connection_string" {
  description = "Application Insights connection string for the function's logs (null: none)."
  type        = string
  default     = null
  sensitive   = true
}

variable "labelbox_principal_id" {
  description = "Object id of the service principal Labelbox uses for delegated access (Labelbox: Settings > Integrations > Azure). It gets Storage Blob Delegator on the account and Storage Blob Data Reader on the container. null: no grant."
  type        = string
  default     = null
}

variable "runtime_storage_account_name" {
  description = "Name of the storage account the module creates for the app's code, host state and dead letters (3 to 24 lowercase letters and digits, globally unique). null: derived from name."
  type        = string
  default     = null
}

variable "key_vault_name" {
  description = "Name of the Key Vault the module creates for the API key (3 to 24 letters, digits and hyphens, globally unique). null: derived from name."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
