variable "location" {
  description = "Azure region (one that offers Flex Consumption)."
  type        = string
  default     = "eastus"
}

variable "name" {
  description = "Prefix of every resource name; also makes the storage account and vault names, which are global: pick something unique."
  type        = string
}

variable "labelbox_dataset_id" {
  description = "Labelbox dataset that receives the rows."
  type        = string
}

variable "package_path" {
  description = "The app's package; null: build/azure.zip of this checkout (run `make package` first)."
  type        = string
  default     = null
}

variable "labelbox_principal_id" {
  description = "Object id of Labelbox's service principal for delegated access (null: no grant)."
  type        = string
  default     = null
}
