output "function_name" {
  value = google_cloudfunctions2_function.ingest.name
}

output "function_service_account" {
  description = "The function's identity: reads the secret (and lists the bucket for tag/delete)."
  value       = google_service_account.function.email
}

output "trigger_service_account" {
  value = google_service_account.trigger.email
}

output "api_key_secret" {
  description = "Where the Labelbox API key is kept (LABELBOX_API_KEY_SECRET without the version)."
  value       = "projects/${var.project_id}/secrets/${local.secret_id}"
}

output "add_api_key_command" {
  description = "Stores (or rotates) the Labelbox API key as a new secret version; the shell prompts for it, and the key never appears on a command line or in the Terraform state."
  value       = "read -rsp 'Labelbox API key: ' KEY && printf %s \"$KEY\" | gcloud secrets versions add ${local.secret_id} --project ${var.project_id} --data-file=-"
}

output "dead_letter_topic" {
  value = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Pull it to read the events that failed every delivery."
  value       = google_pubsub_subscription.dead_letter.id
}

output "dead_letter_commands" {
  description = "Run once after apply: attaches the dead-letter topic to the Pub/Sub subscription of each Eventarc trigger (Eventarc creates and owns them), after letting Pub/Sub's service agent read from it."
  value = [
    for trigger in local.triggers : join(" && ", [
      "SUB=$(gcloud eventarc triggers describe ${trigger} --format='value(transport.pubsub.subscription)')",
      "gcloud pubsub subscriptions add-iam-policy-binding \"$SUB\" --member=${local.pubsub_agent} --role=roles/pubsub.subscriber",
      "gcloud pubsub subscriptions update \"$SUB\" --dead-letter-topic=${google_pubsub_topic.dead_letter.id} --max-delivery-attempts=${var.max_delivery_attempts}",
    ])
  ]
}
