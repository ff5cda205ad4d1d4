variable "project_id" {
  description = "Project of the function, its bucket and its secret (Cloud Storage triggers need the bucket in the function's project)."
  type        = string
}

variable "region" {
  description = "Region of the function, e.g. us-central1."
  type        = string
}

variable "name" {
  description = "Prefix of every resource name. Lowercase letters, digits and hyphens, starting with a letter."
  type        = string
  default     = "bucket-ingest"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name: use 2 to 21 lowercase letters, digits and hyphens, starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "bucket_name" {
  description = "The existing bucket whose objects are registered. Eventarc adds a Pub/Sub notification to it (a bucket takes up to 100), leaving the others alone."
  type        = string
}

variable "trigger_region" {
  description = "Location of the Eventarc triggers: the bucket's location (a region, a dual-region such as nam4, or a multi-region such as us). null: var.region."
  type        = string
  default     = null
}

variable "source_archive" {
  description = "The function's source: build/gcp.zip from `make package` (main.py, handlers/, shared/, requirements.txt)."
  type        = string
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
  description = "Labelbox API key, stored as the first version of a new secret. It also lands in the Terraform state: prefer null, then add the key with the add_api_key_command output, or pass api_key_secret_id."
  type        = string
  default     = null
  sensitive   = true
}

variable "api_key_secret_id" {
  description = "Id of an existing Secret Manager secret of this project holding the key. null: the module creates the secret."
  type        = string
  default     = null
}

variable "labelbox_endpoint" {
  description = "Labelbox GraphQL endpoint."
  type        = string
  default     = "https://api.labelbox.com/graphql"
}

variable "delete_policy" {
  description = "What deleting an object does to its row: ignore, tag or delete. tag and delete add a trigger on deleted objects and let the function list the bucket (storage.objects.list only) to confirm each delete."
  type        = string
  default     = "ignore"

  validation {
    condition     = contains(["ignore", "tag", "delete"], var.delete_policy)
    error_message = "delete_policy: use ignore, tag or delete."
  }
}

variable "include_keys" {
  description = "Object name globs; when not empty, only matching objects register (INGEST_INCLUDE)."
  type        = list(string)
  default     = []
}

variable "exclude_keys" {
  description = "Object name globs never registered (INGEST_EXCLUDE)."
  type        = list(string)
  default     = []
}

variable "max_instance_count" {
  description = "Most concurrent instances: keeps the function inside the organisation's Labelbox request budget."
  type        = number
  default     = 5
}

variable "timeout_seconds" {
  description = "Function timeout; the function gives registration this minus 10 seconds."
  type        = number
  default     = 60
}

variable "available_memory" {
  description = "Memory of one instance."
  type        = string
  default     = "256M"
}

variable "max_delivery_attempts" {
  description = "Deliveries of an event before Pub/Sub moves it to the dead-letter topic (5 to 100)."
  type        = number
  default     = 5
}

variable "labelbox_service_account" {
  description = "Email of the service account Labelbox signs URLs with (Labelbox: Settings > Integrations > Google Cloud). It gets Storage Object Viewer on the bucket. null: no grant."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels for every resource that takes them."
  type        = map(string)
  default     = {}
}
