variable "region" {
  description = "AWS region of the stack (and of the bucket)."
  type        = string
  default     = "us-east-1"
}

variable "labelbox_dataset_id" {
  description = "Labelbox dataset that receives the rows."
  type        = string
}

variable "package_path" {
  description = "The function's package; null: build/aws.zip of this checkout (run `make package` first)."
  type        = string
  default     = null
}

variable "delete_policy" {
  description = "ignore, tag or delete."
  type        = string
  default     = "ignore"
}

variable "labelbox_aws_account_id" {
  description = "Labelbox's AWS account id, for the delegated-access role (null: no role)."
  type        = string
  default     = null
}

variable "labelbox_external_id" {
  description = "Your organisation's external id in Labelbox (null: no role)."
  type        = string
  default     = null
}
