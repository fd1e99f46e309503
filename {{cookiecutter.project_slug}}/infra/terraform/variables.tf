variable "bucket_name" {
  description = "Globally unique name of the bucket that holds the DVC remote and MLflow artifacts."
  type        = string
  default     = "{{ cookiecutter.project_slug | replace('_', '-') }}-artifacts"
}
{%- if cookiecutter.cloud == 'aws' %}

variable "region" {
  description = "AWS region of the bucket."
  type        = string
  default     = "eu-west-1"
}
{%- elif cookiecutter.cloud == 'gcp' %}

variable "project_id" {
  description = "Google Cloud project that owns the bucket."
  type        = string
}

variable "region" {
  description = "Location of the bucket."
  type        = string
  default     = "EU"
}
{%- else %}

variable "location" {
  description = "Azure region of the storage account."
  type        = string
  default     = "westeurope"
}
{%- endif %}
