# A new bucket whose uploads become Labelbox data rows. After `terraform apply`: add the API key with the
# add_api_key_command output, run the dead_letter_commands, then upload.

locals {
  # The APIs the function, its build and its triggers use
  services = [
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]
}

resource "google_project_service" "used" {
  for_each           = toset(local.services)
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_storage_bucket" "data" {
  #checkov:skip=CKV_GCP_62:Access logging needs a second bucket to receive the logs; the function already logs one line per object event.
  #checkov:skip=CKV_GCP_78:Object versioning is the data owner's choice (it keeps every overwritten asset); the example leaves it off.
  project                     = var.project_id
  name                        = "${var.project_id}-labelbox-data"
  location                    = var.region # a trigger's location must match its bucket's
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

module "bucket_ingest" {
  source = "../.."

  project_id               = var.project_id
  region                   = var.region
  bucket_name              = google_storage_bucket.data.name
  source_archive           = coalesce(var.source_archive, "${path.root}/../../../../build/gcp.zip")
  labelbox_dataset_id      = var.labelbox_dataset_id
  labelbox_service_account = var.labelbox_service_account

  depends_on = [google_project_service.used]
}
