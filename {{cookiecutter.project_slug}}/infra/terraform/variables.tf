{%- if cookiecutter.cloud == 'azure' -%}
variable "storage_account_name" {
  description = "Globally unique name of the storage account that holds the DVC remote and MLflow artifacts (3-24 lowercase letters and digits)."
  type        = string
  default     = "{{ (cookiecutter.project_slug | replace('_', '') ~ 'artifacts')[:24] }}"

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name: use 3 to 24 lowercase letters and digits."
  }
}
{%- else -%}
variable "bucket_name" {
  description = "Globally unique name of the bucket that holds the DVC remote and MLflow artifacts."
  type        = string
  default     = "{{ cookiecutter.project_slug | replace('_', '-') }}-artifacts"
}
{%- endif %}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted artifact version is kept before it expires."
  type        = number
  default     = 90
}

variable "gpu_instance_enabled" {
  description = "Create the GPU training VM (billed while it runs)."
  type        = bool
  default     = false
}

variable "gpu_disk_gb" {
  description = "Boot disk size of the training VM, in GB."
  type        = number
  default     = 200
}
{%- if cookiecutter.cloud == 'aws' %}

variable "gpu_instance_type" {
  description = "EC2 instance type of the training VM."
  type        = string
  default     = "g5.xlarge"
}

variable "gpu_ami_id" {
  description = "AMI of the training VM, e.g. an AWS Deep Learning AMI (GPU drivers and CUDA installed)."
  type        = string
  default     = ""
}

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

variable "zone" {
  description = "Zone of the training VM."
  type        = string
  default     = "europe-west4-a"
}

variable "gpu_machine_type" {
  description = "Machine type of the training VM."
  type        = string
  default     = "n1-standard-8"
}

variable "gpu_type" {
  description = "GPU attached to the training VM."
  type        = string
  default     = "nvidia-tesla-t4"
}

variable "gpu_image" {
  description = "Boot image of the training VM; a Deep Learning VM image brings the NVIDIA driver."
  type        = string
  default     = "debian-cloud/debian-12"
}
{%- else %}

variable "location" {
  description = "Azure region of the storage account."
  type        = string
  default     = "westeurope"
}

variable "gpu_vm_size" {
  description = "VM size of the training VM."
  type        = string
  default     = "Standard_NC4as_T4_v3"
}

variable "admin_ssh_public_key" {
  description = "SSH public key of the training VM's admin user."
  type        = string
  default     = ""
}
{%- endif %}
