terraform {
  required_version = ">= 1.6"

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
