{%- if cookiecutter.cloud == 'aws' -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts bucket (DVC remote and MLflow artifact root live under it)."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}"
}
{%- elif cookiecutter.cloud == 'gcp' -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts bucket (DVC remote and MLflow artifact root live under it)."
  value       = "gs://${google_storage_bucket.artifacts.name}"
}
{%- else -%}
output "artifacts_uri" {
  description = "Base URI of the artifacts container (DVC remote and MLflow artifact root live under it)."
  value       = "azure://${azurerm_storage_container.artifacts.name}"
}
{%- endif %}
