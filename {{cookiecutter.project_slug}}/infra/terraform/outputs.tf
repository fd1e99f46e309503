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

output "mlflow_backend_store_uri" {
  description = "For `mlflow server --backend-store-uri` (tracking_db_enabled): add the password from tracking_db_secret_arn."
  value       = var.tracking_db_enabled ? "postgresql+psycopg2://mlflow@${aws_db_instance.tracking[0].endpoint}/mlflow?sslmode=require" : null
}

output "tracking_db_secret_arn" {
  description = "Secrets Manager secret that holds the tracking database's password (tracking_db_enabled)."
  value       = var.tracking_db_enabled ? aws_db_instance.tracking[0].master_user_secret[0].secret_arn : null
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

output "mlflow_backend_store_uri" {
  description = "For `mlflow server --backend-store-uri` (tracking_db_enabled): add the password you set."
  value       = var.tracking_db_enabled ? "postgresql+psycopg2://mlflow@${google_sql_database_instance.tracking[0].private_ip_address}:5432/mlflow?sslmode=require" : null
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

output "mlflow_backend_store_uri" {
  description = "For `mlflow server --backend-store-uri` (tracking_db_enabled): add the password you set."
  value       = var.tracking_db_enabled ? "postgresql+psycopg2://mlflow@${azurerm_postgresql_flexible_server.tracking[0].fqdn}:5432/mlflow?sslmode=require" : null
}
{%- endif %}
