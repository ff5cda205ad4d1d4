variable "name" {
  description = "Prefix of every resource name (queue, function, roles, log group). Lowercase letters, digits and hyphens."
  type        = string
  default     = "bucket-ingest"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}$", var.name))
    error_message = "name: use 2 to 41 lowercase letters, digits and hyphens, starting with a letter or digit."
  }
}

variable "package_path" {
  description = "The function's deployment package: build/aws.zip from `make package`."
  type        = string
}

variable "labelbox_dataset_id" {
  description = "Labelbox dataset that receives the rows (its id, from the dataset's URL)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9]+$", var.labelbox_dataset_id))
    error_message = "labelbox_dataset_id: a Labelbox dataset id has letters and digits only."
  }
}

variable "labelbox_api_key" {
  description = "Labelbox API key, stored in a new Secrets Manager secret. It also lands in the Terraform state: prefer null, then store the key with the command in the store_api_key_command output, or pass labelbox_api_key_secret_arn."
  type        = string
  default     = null
  sensitive   = true
}

variable "labelbox_api_key_secret_arn" {
  description = "ARN of an existing Secrets Manager secret holding the key (the string itself, or JSON with an api_key field). null: the module creates the secret."
  type        = string
  default     = null
}

variable "labelbox_endpoint" {
  description = "Labelbox GraphQL endpoint."
  type        = string
  default     = "https://api.labelbox.com/graphql"
}

variable "existing_bucket_name" {
  description = "null: the module creates the bucket and its S3 -> SQS notification. A name: an existing bucket in this region, connected through EventBridge; its notification configuration is never written (turn EventBridge notifications on with the enable_eventbridge_command output)."
  type        = string
  default     = null
}

variable "bucket_name" {
  description = "Name of the bucket the module creates (null: a unique name starting with var.name). Ignored with existing_bucket_name."
  type        = string
  default     = null
}

variable "delete_policy" {
  description = "What deleting an object does to its row: ignore, tag (mark it deleted) or delete (delete it and its labels). tag and delete also subscribe to delete events and let the function confirm each delete with s3:ListBucket."
  type        = string
  default     = "ignore"

  validation {
    condition     = contains(["ignore", "tag", "delete"], var.delete_policy)
    error_message = "delete_policy: use ignore, tag or delete."
  }
}

variable "include_keys" {
  description = "Key globs; when not empty, only matching objects register (INGEST_INCLUDE)."
  type        = list(string)
  default     = []
}

variable "exclude_keys" {
  description = "Key globs never registered (INGEST_EXCLUDE)."
  type        = list(string)
  default     = []
}

variable "batch_size" {
  description = "Most messages per invocation (above 10 needs batching_window_seconds of at least 1)."
  type        = number
  default     = 10
}

variable "batching_window_seconds" {
  description = "Longest wait for a fuller batch; larger batches mean fewer Labelbox calls."
  type        = number
  default     = 5
}

variable "maximum_concurrency" {
  description = "Most concurrent invocations the queue drives (2 to 1000): keeps the function inside the organisation's Labelbox request budget."
  type        = number
  default     = 5
}

variable "max_receive_count" {
  description = "Deliveries of a message before it moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "function_timeout" {
  description = "Function timeout in seconds."
  type        = number
  default     = 60
}

variable "queue_visibility_timeout" {
  description = "Seconds a received message stays hidden; at least function_timeout, six times it recommended."
  type        = number
  default     = 360
}

variable "memory_size" {
  description = "Function memory in MB."
  type        = number
  default     = 256
}

variable "log_retention_days" {
  description = "Days the function's log group keeps its lines (one per object outcome)."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic notified when the dead-letter queue holds messages (null: the alarm has no action)."
  type        = string
  default     = null
}

variable "labelbox_aws_account_id" {
  description = "Labelbox's AWS account id (Labelbox: Settings > Integrations > AWS). With labelbox_external_id, creates the role Labelbox assumes to read the bucket."
  type        = string
  default     = null
}

variable "labelbox_external_id" {
  description = "Your organisation's external id, shown on the same Labelbox page."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}
