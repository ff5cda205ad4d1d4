# A new bucket whose uploads become Labelbox data rows. After `terraform apply`, store the API key with the
# store_api_key_command output, then upload. For an existing bucket set existing_bucket_name instead (README).
module "bucket_ingest" {
  source = "../.."

  package_path            = coalesce(var.package_path, "${path.root}/../../../../build/aws.zip")
  labelbox_dataset_id     = var.labelbox_dataset_id
  delete_policy           = var.delete_policy
  labelbox_aws_account_id = var.labelbox_aws_account_id
  labelbox_external_id    = var.labelbox_external_id
}
