"""The GraphQL subset the endpoint answers: types as data, and a resolver per root field.

Field names, arguments and shapes follow what the official SDK (labelbox 7.17.0, lbox-clients 1.1.2) sends and
reads: ``client.py``, ``schema/dataset.py``, ``schema/task.py``, ``schema/organization.py``,
``schema/data_row_metadata.py``, ``orm/query.py`` and the entities' ``Field`` lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bucket_ingest.labelbox_endpoint.graphql import GraphQLError, Resolver, Schema
from bucket_ingest.labelbox_endpoint.store import RowRefused

if TYPE_CHECKING:
    from bucket_ingest.labelbox_endpoint.server import LabelboxEndpoint

T = TypeVar("T")
_TASK = {
    "id": "ID",
    "name": "String",
    "type": "String",
    "status": "String",
    "completionPercentage": "Float",
    "createdAt": "DateTime",
    "updatedAt": "DateTime",
    "result": "Json",
    "errors": "Json",
    "metadata": "Json",
    "createdBy": "User",
    "organization": "Organization",
}

SCHEMA = Schema(
    types={
        "Query": {
            "user": "User",
            "organization": "Organization",
            "dataset": "Dataset",
            "dataRow": "DataRow",
            "iamIntegrations": "[IAMIntegration]",
            "customMetadataOntology": "[CustomMetadataSchema]",
            "dataRowsForGlobalKeys": "GlobalKeysJob",
            "dataRowsForGlobalKeysResult": "GlobalKeysJobResult",
            "failedDataRowImports": "FailedDataRowImports",
            "successesfulDataRowImports": "SuccessfulDataRowImports",
            "datasetDataRows": "DatasetDataRows",
        },
        "Mutation": {
            "uploadFile": "UploadedFile",
            "createDataset": "Dataset",
            "updateDataset": "Dataset",
            "setSignerForDataset": "Dataset",
            "clearSignerForDataset": "Dataset",
            "validateDataset": "DatasetValidation",
            "upsertDataRows": "Task",
            "deleteDataRows": "[DataRow]",
            "upsertDataRowCustomMetadata": "[DataRowCustomMetadataResult]",
            "upsertCustomMetadataSchema": "CustomMetadataSchema",
        },
        "User": {
            "id": "ID",
            "email": "String",
            "name": "String",
            "nickname": "String",
            "picture": "String",
            "createdAt": "DateTime",
            "updatedAt": "DateTime",
            "lastLoginAt": "DateTime",
            "isViewer": "Boolean",
            "isExternalUser": "Boolean",
            "createdTasks": "[Task]",
            "organization": "Organization",
        },
        "Organization": {"id": "ID", "name": "String", "createdAt": "DateTime", "updatedAt": "DateTime"},
        "IAMIntegration": {
            "id": "ID",
            "name": "String",
            "createdAt": "DateTime",
            "updatedAt": "DateTime",
            "provider": "String",
            "valid": "Boolean",
            "lastValidAt": "DateTime",
            "isOrgDefault": "Boolean",
            "settings": "IamIntegrationSettings",
        },
        "AwsIamIntegrationSettings": {"roleArn": "String", "readBucket": "String"},
        "GcpIamIntegrationSettings": {"serviceAccountEmailId": "String", "readBucket": "String"},
        "AzureIamIntegrationSettings": {"readContainerUrl": "String", "tenantId": "String"},
        "Dataset": {
            "id": "ID",
            "name": "String",
            "description": "String",
            "createdAt": "DateTime",
            "updatedAt": "DateTime",
            "rowCount": "Int",
            "deleted": "Boolean",
            "signer": "IAMIntegration",
            "createdBy": "User",
            "organization": "Organization",
        },
        "DataRow": {
            "id": "ID",
            "globalKey": "String",
            "externalId": "String",
            "rowData": "String",
            "mediaType": "String",
            "createdAt": "DateTime",
            "updatedAt": "DateTime",
            "deleted": "Boolean",
            "mediaAttributes": "Json",
            "customMetadata": "[DataRowCustomMetadata]",
            "metadataFields": "[DataRowMetadataField]",
            "attachments": "[AssetAttachment]",
            "dataset": "Dataset",
        },
        "DataRowCustomMetadata": {"schemaId": "ID", "value": "Json"},
        "DataRowMetadataField": {"schemaId": "ID", "name": "String", "value": "Json", "kind": "String"},
        "AssetAttachment": {"id": "ID", "type": "String", "value": "String", "name": "String"},
        "Task": _TASK,
        "CustomMetadataSchema": {
            "id": "ID",
            "name": "String",
            "kind": "String",
            "reserved": "Boolean",
            "options": "[CustomMetadataSchema]",
        },
        "GlobalKeysJob": {"jobId": "ID"},
        "GlobalKeysJobResult": {"jobStatus": "String", "data": "GlobalKeysJobData"},
        "GlobalKeysJobData": {
            "fetchedDataRows": "[DataRow]",
            "notFoundGlobalKeys": "[String]",
            "accessDeniedGlobalKeys": "[String]",
        },
        "FailedDataRowImports": {"after": "String", "total": "Int", "results": "[FailedDataRowImport]"},
        "FailedDataRowImport": {"message": "String", "spec": "FailedDataRowSpec"},
        "FailedDataRowSpec": {
            "externalId": "String",
            "globalKey": "String",
            "rowData": "String",
            "metadata": "[FailedDataRowMetadata]",
            "attachments": "[FailedDataRowAttachment]",
        },
        "FailedDataRowMetadata": {"schemaId": "ID", "value": "Json", "name": "String"},
        "FailedDataRowAttachment": {"type": "String", "value": "String", "name": "String"},
        "SuccessfulDataRowImports": {"nodes": "[DataRow]", "after": "String", "total": "Int"},
        "DatasetDataRows": {"nodes": "[DataRow]", "pageInfo": "PageInfo"},
        "PageInfo": {"hasNextPage": "Boolean", "startCursor": "String"},
        "UploadedFile": {"url": "String", "filename": "String"},
        "DatasetValidation": {"valid": "Boolean", "checks": "[DatasetValidationCheck]"},
        "DatasetValidationCheck": {"name": "String", "success": "Boolean"},
        "DataRowCustomMetadataResult": {
            "globalKey": "String",
            "dataRowId": "ID",
            "error": "String",
            "fields": "[DataRowCustomMetadata]",
        },
    },
    unions={
        "IamIntegrationSettings": (
            "AwsIamIntegrationSettings",
            "GcpIamIntegrationSettings",
            "AzureIamIntegrationSettings",
        )
    },
)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec)."""

    filename: str
    content_type: str | None
    body: bytes


def _found(value: T | None, what: str) -> T:
    """``value``, or Labelbox's not-found error for the missing ``what``."""
    if value is None:
        raise GraphQLError(f"{what} not found", "RESOURCE_NOT_FOUND", 404)
    return value


def _where_id(args: Mapping[str, Any]) -> Any:
    return (args.get("where") or {}).get("id")


def resolvers(endpoint: LabelboxEndpoint) -> dict[str, Resolver]:
    """Root-field resolvers bound to one endpoint (its store, faults and base URL)."""
    store = endpoint.store

    def user(args: dict[str, Any], _: Any) -> Any:
        wanted = _where_id(args)
        if wanted is not None and wanted != store.user_id:
            return None
        return {**store.user(), "createdTasks": created_tasks}

    def created_tasks(args: dict[str, Any]) -> Any:
        task_id = _where_id(args)
        return store.user_tasks(
            None if task_id is None else [task_id], int(args.get("skip") or 0), int(args.get("first") or 100)
        )

    def dataset(args: dict[str, Any], _: Any) -> Any:
        return _found(store.dataset(_where_id(args)), "Dataset")

    def data_row(args: dict[str, Any], _: Any) -> Any:
        return _found(store.data_row(_where_id(args)), "DataRow")

    def upload_file(args: dict[str, Any], _: Any) -> Any:
        upload = args.get("file")
        if not isinstance(upload, Upload):
            raise GraphQLError("Variable $file must be a multipart file upload", "BAD_USER_INPUT", 400)
        file_id = store.save_file(upload.filename, upload.content_type, upload.body)
        endpoint.note_upload(file_id, upload)
        return {"url": endpoint.file_url(file_id, upload.filename), "filename": upload.filename}

    def create_dataset(args: dict[str, Any], _: Any) -> Any:
        data = args.get("data") or {}
        if not data.get("name"):
            raise GraphQLError("A dataset needs a name", "BAD_USER_INPUT", 400)
        return store.create_dataset(str(data["name"]), data.get("description"))

    def update_dataset(args: dict[str, Any], _: Any) -> Any:
        return _found(store.update_dataset(_where_id(args), args.get("data") or {}), "Dataset")

    def set_signer(args: dict[str, Any], _: Any) -> Any:
        signer_id = (args.get("data") or {}).get("signerId")
        _found(store.integration(signer_id), "IAM integration")
        return _found(store.set_signer(_where_id(args), signer_id), "Dataset")

    def clear_signer(args: dict[str, Any], _: Any) -> Any:
        return _found(store.set_signer(_where_id(args), None), "Dataset")

    def validate_dataset(args: dict[str, Any], _: Any) -> Any:
        return _found(store.validate_dataset(_where_id(args)), "Dataset")

    def upsert_data_rows(args: dict[str, Any], _: Any) -> Any:
        manifest_uri = (args.get("data") or {}).get("manifestUri")
        if not isinstance(manifest_uri, str) or not manifest_uri:
            raise GraphQLError("manifestUri is required", "BAD_USER_INPUT", 400)
        return endpoint.start_task(manifest_uri)

    def delete_data_rows(args: dict[str, Any], _: Any) -> Any:
        ids = (args.get("where") or {}).get("dataRowIds") or []
        if len(ids) > 4000:
            raise GraphQLError("At most 4000 data rows can be deleted at once", "INTERNAL_SERVER_ERROR", 400)
        return store.delete_rows([str(i) for i in ids])

    def global_keys_job(args: dict[str, Any], _: Any) -> Any:
        keys = (args.get("where") or {}).get("ids") or []
        return {"jobId": store.lookup_global_keys([str(k) for k in keys])}

    def global_keys_result(args: dict[str, Any], _: Any) -> Any:
        result = _found(store.job(str((args.get("jobId") or {}).get("id"))), "Job")
        return {"jobStatus": "COMPLETE", "data": result}

    def failed_imports(args: dict[str, Any], _: Any) -> Any:
        data = args.get("data") or {}
        return _found(store.failed_imports(str(data.get("taskId")), data.get("first"), data.get("from")), "Task")

    def successful_imports(args: dict[str, Any], _: Any) -> Any:
        data = args.get("data") or {}
        return _found(store.successful_imports(str(data.get("taskId")), data.get("first"), data.get("from")), "Task")

    def dataset_rows(args: dict[str, Any], _: Any) -> Any:
        _found(store.dataset(args.get("id")), "Dataset")
        return store.dataset_rows(str(args["id"]), args.get("from"), int(args.get("first") or 500))

    def upsert_metadata(args: dict[str, Any], _: Any) -> Any:
        return store.upsert_metadata(args.get("data") or [])

    def upsert_schema(args: dict[str, Any], _: Any) -> Any:
        data = args.get("data") or {}
        try:
            return store.upsert_schema(str(data.get("name")), str(data.get("kind")), data.get("id"))
        except RowRefused as refused:
            raise GraphQLError(str(refused), "INTERNAL_SERVER_ERROR", 400) from None

    return {
        "user": user,
        "organization": lambda args, _: store.organization(),
        "dataset": dataset,
        "dataRow": data_row,
        "iamIntegrations": lambda args, _: store.integrations(),
        "customMetadataOntology": lambda args, _: store.ontology(),
        "dataRowsForGlobalKeys": global_keys_job,
        "dataRowsForGlobalKeysResult": global_keys_result,
        "failedDataRowImports": failed_imports,
        "successesfulDataRowImports": successful_imports,
        "datasetDataRows": dataset_rows,
        "uploadFile": upload_file,
        "createDataset": create_dataset,
        "updateDataset": update_dataset,
        "setSignerForDataset": set_signer,
        "clearSignerForDataset": clear_signer,
        "validateDataset": validate_dataset,
        "upsertDataRows": upsert_data_rows,
        "deleteDataRows": delete_data_rows,
        "upsertDataRowCustomMetadata": upsert_metadata,
        "upsertCustomMetadataSchema": upsert_schema,
    }
