terraform {
  required_version = ">= 1.6"

  # State lists every resource with its secrets: keep it in the cloud's own store, not in git
  # (.gitignore drops local state). Create that store once by hand, uncomment the block below,
  # then run `terraform -chdir=infra/terraform init -migrate-state`.
{%- if cookiecutter.cloud == 'aws' %}
  # backend "s3" {
  #   bucket       = "{{ cookiecutter.project_slug | replace('_', '-') }}-tfstate"
  #   key          = "infra/terraform.tfstate"
  #   region       = "eu-west-1"
  #   encrypt      = true
  #   use_lockfile = true
  # }
{%- elif cookiecutter.cloud == 'gcp' %}
  # backend "gcs" {
  #   bucket = "{{ cookiecutter.project_slug | replace('_', '-') }}-tfstate"
  #   prefix = "infra"
  # }
{%- else %}
  # backend "azurerm" {
  #   resource_group_name  = "{{ cookiecutter.project_slug | replace('_', '-') }}-tfstate"
  #   storage_account_name = "{{ (cookiecutter.project_slug | replace('_', '') ~ 'tfstate')[:24] }}"
  #   container_name       = "tfstate"
  #   key                  = "infra.terraform.tfstate"
  # }
{%- endif %}

  required_providers {
{%- if cookiecutter.cloud == 'aws' %}
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
{%- elif cookiecutter.cloud == 'gcp' %}
    google = {
      source  = "hashicorp/google"
      version = "~> 6.14"
    }
{%- else %}
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.14"
    }
{%- endif %}
  }
}
