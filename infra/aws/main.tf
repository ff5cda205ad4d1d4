# bucket-ingest on AWS: S3 -> SQS (+ dead-letter queue) -> Lambda (python3.12, arm64) -> Labelbox.
# The same design as template.yaml; infra/aws/README.md explains it.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  create_bucket        = var.existing_bucket_name == null
  bucket_name          = local.create_bucket ? aws_s3_bucket.ingest[0].bucket : var.existing_bucket_name
  bucket_arn           = "arn:${data.aws_partition.current.partition}:s3:::${local.bucket_name}"
  watch_deletes        = var.delete_policy != "ignore"
  create_secret        = var.labelbox_api_key_secret_arn == null
  secret_arn           = local.create_secret ? aws_secretsmanager_secret.api_key[0].arn : var.labelbox_api_key_secret_arn
  create_labelbox_role = var.labelbox_aws_account_id != null && var.labelbox_external_id != null
  function_name        = "${var.name}-ingest"
  # The queue's ARN, known before the queue exists: its policy is set when it is created (the provider waits
  # about 25 s after each queue change for it to settle, so one change instead of two), and the function's role
  # need not wait for it.
  queue_name = "${var.name}-events"
  queue_arn  = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:${local.queue_name}"
  # S3 event names for a created bucket; EventBridge detail types for an existing one
  s3_events   = local.watch_deletes ? ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"] : ["s3:ObjectCreated:*"]
  event_types = local.watch_deletes ? ["Object Created", "Object Deleted"] : ["Object Created"]
  # Labelbox's app loads assets in the browser through short-lived signed URLs (IAM delegated access)
  labelbox_origins = ["https://app.labelbox.com", "https://editor.labelbox.com"]
}

# ---------------------------------------------------------------------------------------------------------------
# Queues

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name}-dead-letter"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps a message: time to look and redrive
  # SSE-SQS: S3 and EventBridge cannot send to a queue encrypted with the AWS managed KMS key
  sqs_managed_sse_enabled = true
  tags                    = var.tags
}

resource "aws_sqs_queue" "ingest" {
  name                       = local.queue_name
  visibility_timeout_seconds = var.queue_visibility_timeout
  message_retention_seconds  = 345600 # 4 days
  sqs_managed_sse_enabled    = true
  policy                     = data.aws_iam_policy_document.queue.json
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

data "aws_iam_policy_document" "queue" {
  dynamic "statement" {
    for_each = local.create_bucket ? [1] : []
    content {
      sid       = "S3NotificationsFromTheBucket"
      actions   = ["sqs:SendMessage"]
      resources = [local.queue_arn]
      principals {
        type        = "Service"
        identifiers = ["s3.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [local.bucket_arn]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }
  dynamic "statement" {
    for_each = local.create_bucket ? [] : [1]
    content {
      sid       = "EventBridgeRuleForTheBucket"
      actions   = ["sqs:SendMessage"]
      resources = [local.queue_arn]
      principals {
        type        = "Service"
        identifiers = ["events.amazonaws.com"]
      }
      condition {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [aws_cloudwatch_event_rule.objects[0].arn]
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------------------------
# A bucket the module creates: S3 -> SQS. Only a bucket the module owns gets a notification configuration from
# it: S3 keeps one configuration per bucket and a PUT replaces it whole, so writing one on a bucket others use
# would silently drop their events.

resource "aws_s3_bucket" "ingest" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second bucket to receive the logs; the function already logs one line per object event.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles the storage and needs a bucket in another region; the data's owner decides it, not the ingester.
  #checkov:skip=CKV_AWS_145:SSE-S3 encrypts at rest; SSE-KMS would also need a key policy granting the Labelbox role kms:Decrypt.
  #checkov:skip=CKV2_AWS_61:Object lifecycle (expiry, tiering) is the data owner's policy; expiring objects would break the rows pointing at them.
  count         = local.create_bucket ? 1 : 0
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-" : null
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "ingest" {
  count                   = local.create_bucket ? 1 : 0
  bucket                  = aws_s3_bucket.ingest[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "ingest" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.ingest[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "ingest" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.ingest[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "ingest" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.ingest[0].id
  versioning_configuration {
    status = "Enabled" # an accidental delete or overwrite of a labelled asset stays recoverable
  }
}

resource "aws_s3_bucket_cors_configuration" "ingest" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.ingest[0].id
  cors_rule {
    allowed_origins = local.labelbox_origins
    allowed_methods = ["GET", "HEAD"]
    allowed_headers = ["*"]
    max_age_seconds = 3600
  }
}

resource "aws_s3_bucket_notification" "ingest" {
  count  = local.create_bucket ? 1 : 0
  bucket = aws_s3_bucket.ingest[0].id
  queue {
    queue_arn = aws_sqs_queue.ingest.arn
    events    = local.s3_events
  }
  # S3 checks that it may send to the queue when the configuration is written: the queue carries its policy
}

# ---------------------------------------------------------------------------------------------------------------
# An existing bucket: S3 -> EventBridge -> SQS. Nothing here writes to the bucket; EventBridge notifications are
# turned on by its owner (enable_eventbridge_command output, or the console toggle), which keeps the others.

resource "aws_cloudwatch_event_rule" "objects" {
  count       = local.create_bucket ? 0 : 1
  name        = "${var.name}-objects"
  description = "Object events of s3://${var.existing_bucket_name} to the bucket-ingest queue"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = local.event_types
    detail      = { bucket = { name = [var.existing_bucket_name] } }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "queue" {
  count     = local.create_bucket ? 0 : 1
  rule      = aws_cloudwatch_event_rule.objects[0].name
  target_id = "ingest-queue"
  arn       = aws_sqs_queue.ingest.arn
}

# ---------------------------------------------------------------------------------------------------------------
# The API key: the function receives only the secret's ARN

resource "aws_secretsmanager_secret" "api_key" {
  #checkov:skip=CKV2_AWS_57:Labelbox API keys are issued in Labelbox's UI; no rotation Lambda can mint one. Rotate by storing a new key (store_api_key_command output).
  count       = local.create_secret ? 1 : 0
  name_prefix = "${var.name}-labelbox-api-key-"
  description = "Labelbox API key of bucket-ingest ${var.name}"
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "api_key" {
  count         = local.create_secret && var.labelbox_api_key != null ? 1 : 0
  secret_id     = aws_secretsmanager_secret.api_key[0].id
  secret_string = var.labelbox_api_key
}

# ---------------------------------------------------------------------------------------------------------------
# The function and what it may do: consume its queue, read the secret, write its log group; list the bucket
# only when deletes are acted on (ListObjectsV2 Prefix=key MaxKeys=1 confirms the object is gone). It never
# reads object bytes.

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158:The lines hold object names and outcomes, never the key; CloudWatch encrypts log data at rest already.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-function"
  description        = "bucket-ingest function: reads its queue and the API key secret, writes its own log group."
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

data "aws_iam_policy_document" "function" {
  statement {
    sid       = "ConsumeTheQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [local.queue_arn]
  }
  statement {
    sid       = "ReadTheApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.secret_arn]
  }
  # Logs and metrics: Powertools writes metrics as EMF lines, which CloudWatch turns into metrics
  statement {
    sid       = "WriteItsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }
  dynamic "statement" {
    for_each = local.watch_deletes ? [1] : []
    content {
      sid       = "ConfirmDeletes"
      actions   = ["s3:ListBucket"]
      resources = [local.bucket_arn]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "ingest"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "ingest" {
  #checkov:skip=CKV_AWS_116:Invoked through an SQS event source mapping, not asynchronously; failed messages go to the queue's own dead-letter queue.
  #checkov:skip=CKV_AWS_117:The function calls only public endpoints (Labelbox, Secrets Manager, S3); a VPC would add a NAT gateway and protect no private resource.
  #checkov:skip=CKV_AWS_115:Concurrency is capped where events enter, scaling_config.maximum_concurrency on the event source mapping; reserved concurrency would throttle and push messages back instead.
  #checkov:skip=CKV_AWS_173:The variables hold no secret (only the secret's ARN); Lambda encrypts them at rest with an AWS managed key.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile and a signed artifact pipeline; the package is built reproducibly by `make package` instead.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is off by design (the handler imports no tracer unless POWERTOOLS_TRACE_DISABLED=false); logs and EMF metrics cover each object.
  function_name    = local.function_name
  description      = "bucket-ingest: registers the objects of s3://${local.bucket_name} in Labelbox"
  role             = aws_iam_role.function.arn
  handler          = "handlers.aws.lambda_handler"
  runtime          = "python3.12"
  architectures    = ["arm64"]
  filename         = var.package_path
  source_code_hash = filebase64sha256(var.package_path)
  memory_size      = var.memory_size
  timeout          = var.function_timeout

  environment {
    variables = {
      INGEST_REGISTRY              = "labelbox://${var.labelbox_dataset_id}"
      LABELBOX_API_KEY_SECRET      = local.secret_arn
      LABELBOX_ENDPOINT            = var.labelbox_endpoint
      INGEST_DELETE_POLICY         = var.delete_policy
      INGEST_ALLOWED_BUCKETS       = local.bucket_name
      INGEST_INCLUDE               = join(",", var.include_keys)
      INGEST_EXCLUDE               = join(",", var.exclude_keys)
      POWERTOOLS_SERVICE_NAME      = "bucket-ingest"
      POWERTOOLS_METRICS_NAMESPACE = "BucketIngest"
    }
  }

  tags = var.tags
  # the log group exists first, with its retention: the role may not create log groups
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "queue" {
  event_source_arn                   = aws_sqs_queue.ingest.arn
  function_name                      = aws_lambda_function.ingest.arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letter" {
  alarm_name          = "${var.name}-dead-letter"
  alarm_description   = "bucket-ingest ${var.name}: messages reached the dead-letter queue. Read the function's log lines for their reason, fix it, then redrive them (SQS console: Start DLQ redrive)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_topic_arn == null ? [] : [var.alarm_topic_arn]
  tags                = var.tags
}

# ---------------------------------------------------------------------------------------------------------------
# Labelbox's delegated access: a role Labelbox assumes (its account, your external id) to sign URLs

data "aws_iam_policy_document" "assume_labelbox" {
  count = local.create_labelbox_role ? 1 : 0
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${var.labelbox_aws_account_id}:root"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.labelbox_external_id]
    }
  }
}

data "aws_iam_policy_document" "labelbox" {
  statement {
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/*"]
  }
  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [local.bucket_arn]
  }
}

resource "aws_iam_role" "labelbox" {
  count              = local.create_labelbox_role ? 1 : 0
  name               = "${var.name}-labelbox"
  description        = "Assumed by Labelbox (IAM delegated access) to sign URLs for the bucket's objects."
  assume_role_policy = data.aws_iam_policy_document.assume_labelbox[0].json
  tags               = var.tags
}

resource "aws_iam_role_policy" "labelbox" {
  count  = local.create_labelbox_role ? 1 : 0
  name   = "read-the-bucket"
  role   = aws_iam_role.labelbox[0].id
  policy = data.aws_iam_policy_document.labelbox.json
}
