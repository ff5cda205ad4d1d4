# bucket-ingest on Google Cloud: GCS -> Eventarc -> Cloud Run function (2nd gen, python312) -> Labelbox, with
# retries on and a dead-letter topic. infra/gcp/README.md explains it.

data "google_project" "current" {
  project_id = var.project_id
}

data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

locals {
  trigger_region = coalesce(var.trigger_region, var.region)
  watch_deletes  = var.delete_policy != "ignore"
  create_secret  = var.api_key_secret_id == null
  secret_id      = local.create_secret ? google_secret_manager_secret.api_key[0].secret_id : var.api_key_secret_id
  function_name  = "${var.name}-ingest"
  pubsub_agent   = "serviceAccount:service-${data.google_project.current.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # The triggers whose Pub/Sub subscriptions get the dead-letter topic (see dead_letter_commands)
  triggers = concat(
    [google_cloudfunctions2_function.ingest.event_trigger[0].trigger],
    [for t in google_eventarc_trigger.deleted : t.id],
  )
}

# ---------------------------------------------------------------------------------------------------------------
# Identities: one for the function (reads the secret; lists the bucket only for tag/delete), one for Eventarc
# (receives events, invokes this function and nothing else)

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "bucket-ingest function (${var.name})"
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "bucket-ingest Eventarc triggers (${var.name})"
}

resource "google_project_iam_member" "trigger_receives_events" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_service_iam_member" "trigger_invokes_function" {
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.ingest.name # the function's Cloud Run service has its name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Cloud Storage publishes its events to Eventarc's Pub/Sub topic as its service agent
resource "google_project_iam_member" "gcs_publishes_events" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# ---------------------------------------------------------------------------------------------------------------
# The API key: the function receives only the secret's name and reads it with its own identity

resource "google_secret_manager_secret" "api_key" {
  count     = local.create_secret ? 1 : 0
  project   = var.project_id
  secret_id = "${var.name}-labelbox-api-key"
  labels    = var.labels
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "api_key" {
  count       = local.create_secret && var.labelbox_api_key != null ? 1 : 0
  secret      = google_secret_manager_secret.api_key[0].id
  secret_data = var.labelbox_api_key
}

resource "google_secret_manager_secret_iam_member" "function_reads_api_key" {
  project   = var.project_id
  secret_id = local.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function.email}"
}

# Deletes are confirmed with objects.list(prefix=name, maxResults=1): storage.objects.list and nothing else
resource "google_project_iam_custom_role" "object_lister" {
  count       = local.watch_deletes ? 1 : 0
  project     = var.project_id
  role_id     = "${replace(var.name, "-", "_")}_object_lister"
  title       = "bucket-ingest object lister (${var.name})"
  description = "Lists object names, to confirm an object is gone before its Labelbox row is deleted or tagged."
  permissions = ["storage.objects.list"]
}

resource "google_storage_bucket_iam_member" "function_lists_objects" {
  count  = local.watch_deletes ? 1 : 0
  bucket = var.bucket_name
  role   = google_project_iam_custom_role.object_lister[0].id
  member = "serviceAccount:${google_service_account.function.email}"
}

# Labelbox's delegated access: its service account signs URLs for the bucket's objects
resource "google_storage_bucket_iam_member" "labelbox_reads_objects" {
  count  = var.labelbox_service_account == null ? 0 : 1
  bucket = var.bucket_name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${var.labelbox_service_account}"
}

# ---------------------------------------------------------------------------------------------------------------
# The function

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only the function's source archives, uploaded by Terraform; access logs would record Terraform and Cloud Build.
  #checkov:skip=CKV_GCP_78:Every source archive has its own name (its MD5), so nothing is overwritten; versions would only keep deleted archives.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true # only build inputs live here
  labels                      = var.labels
}

resource "google_storage_bucket_object" "source" {
  name   = "${var.name}-${filemd5(var.source_archive)}.zip" # a new name per archive redeploys the function
  bucket = google_storage_bucket.source.name
  source = var.source_archive
}

resource "google_cloudfunctions2_function" "ingest" {
  project     = var.project_id
  name        = local.function_name
  location    = var.region
  description = "bucket-ingest: registers the objects of gs://${var.bucket_name} in Labelbox"
  labels      = var.labels

  build_config {
    runtime     = "python312"
    entry_point = "on_storage_event" # main.py re-exports handlers.gcp's entry points
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instance_count
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    ingress_settings               = "ALLOW_INTERNAL_ONLY" # Eventarc delivers internally; nothing else calls it
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.function.email
    environment_variables = {
      INGEST_REGISTRY         = "labelbox://${var.labelbox_dataset_id}"
      LABELBOX_API_KEY_SECRET = "projects/${var.project_id}/secrets/${local.secret_id}/versions/latest"
      LABELBOX_ENDPOINT       = var.labelbox_endpoint
      INGEST_DELETE_POLICY    = var.delete_policy
      INGEST_ALLOWED_BUCKETS  = var.bucket_name
      INGEST_INCLUDE          = join(",", var.include_keys)
      INGEST_EXCLUDE          = join(",", var.exclude_keys)
      INGEST_TIMEOUT_SECONDS  = tostring(var.timeout_seconds - 10)
    }
  }

  event_trigger {
    trigger_region        = local.trigger_region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY" # retries are off unless asked for: a failure would drop the event
    service_account_email = google_service_account.trigger.email
    event_filters {
      attribute = "bucket"
      value     = var.bucket_name
    }
  }

  depends_on = [
    google_project_iam_member.gcs_publishes_events,
    google_project_iam_member.trigger_receives_events,
    google_secret_manager_secret_iam_member.function_reads_api_key,
  ]
}

# A function has one trigger; deleted objects reach the same service (and entry point) through a second one
resource "google_eventarc_trigger" "deleted" {
  count           = local.watch_deletes ? 1 : 0
  project         = var.project_id
  name            = "${var.name}-deleted"
  location        = local.trigger_region
  service_account = google_service_account.trigger.email
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.deleted"
  }
  matching_criteria {
    attribute = "bucket"
    value     = var.bucket_name
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.ingest.name
      region  = var.region
    }
  }

  depends_on = [google_cloud_run_service_iam_member.trigger_invokes_function]
}

# ---------------------------------------------------------------------------------------------------------------
# Dead letters: events still failing after max_delivery_attempts land on this topic; its subscription keeps
# them 7 days (a topic without subscriptions keeps nothing). Eventarc owns its triggers' subscriptions, so the
# topic is attached to them once, after apply, with the dead_letter_commands output.

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; the messages are object events (names, sizes), never the key.
  project = var.project_id
  name    = "${var.name}-dead-letter"
  labels  = var.labels
}

resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60
  labels                     = var.labels
  expiration_policy {
    ttl = "" # never expires, however long nothing fails
  }
}

# Pub/Sub forwards dead letters as its service agent
resource "google_pubsub_topic_iam_member" "pubsub_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.id
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}
