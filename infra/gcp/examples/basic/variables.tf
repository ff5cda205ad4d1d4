variable "project_id" {
  description = "Project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the bucket and the function."
  type        = string
  default     = "us-central1"
}

variable "labelbox_dataset_id" {
  description = "Labelbox dataset that receives the rows."
  type        = string
}

variable "source_archive" {
  description = "The function's source; null: build/gcp.zip of this checkout (run `make package` first)."
  type        = string
  default     = null
}

variable "labelbox_service_account" {
  description = "Labelbox's service account for delegated access (null: no grant)."
  type        = string
  default     = null
}
