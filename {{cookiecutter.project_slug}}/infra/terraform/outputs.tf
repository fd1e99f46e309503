{%- if cookiecutter.cloud == 'aws' -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts bucket (DVC remote and MLflow artifact root live under it)."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}"
}

output "dvc_remote_url" {
  description = "DVC remote URL, as .dvc/config names it."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/dvc"
}

output "mlflow_artifacts_uri" {
  description = "Artifact root for `mlflow server --artifacts-destination`."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}/mlflow"
}
{%- elif cookiecutter.cloud == 'gcp' -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts bucket (DVC remote and MLflow artifact root live under it)."
  value       = "gs://${google_storage_bucket.artifacts.name}"
}

output "dvc_remote_url" {
  description = "DVC remote URL, as .dvc/config names it."
  value       = "gs://${google_storage_bucket.artifacts.name}/dvc"
}

output "mlflow_artifacts_uri" {
  description = "Artifact root for `mlflow server --artifacts-destination`."
  value       = "gs://${google_storage_bucket.artifacts.name}/mlflow"
}
{%- else -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts container (DVC remote and MLflow artifact root live under it)."
  value       = "azure://${azurerm_storage_container.artifacts.name}"
}

output "storage_account" {
  description = "Storage account of the container (DVC remote option account_name)."
  value       = azurerm_storage_account.artifacts.name
}

output "dvc_remote_url" {
  description = "DVC remote URL, as .dvc/config names it."
  value       = "azure://${azurerm_storage_container.artifacts.name}/dvc"
}

output "mlflow_artifacts_uri" {
  description = "Artifact root for `mlflow server --artifacts-destination`."
  value       = "wasbs://${azurerm_storage_container.artifacts.name}@${azurerm_storage_account.artifacts.name}.blob.core.windows.net/mlflow"
}
{%- endif %}
