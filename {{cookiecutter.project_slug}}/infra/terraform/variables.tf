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

variable "tracking_db_enabled" {
  description = "Create the PostgreSQL database of a team's MLflow tracking server (billed while it exists)."
  type        = bool
  default     = false
}

variable "tracking_db_vpc_id" {
  description = "VPC of the tracking database (and of the tracking server that connects to it)."
  type        = string
  default     = ""
}

variable "tracking_db_subnet_ids" {
  description = "Private subnets of the tracking database, in two or more availability zones."
  type        = list(string)
  default     = []
}

variable "tracking_db_allowed_cidrs" {
  description = "Private address ranges that may connect to the tracking database (the tracking server's)."
  type        = list(string)
  default     = []
}

variable "tracking_db_instance_class" {
  description = "RDS instance class of the tracking database."
  type        = string
  default     = "db.t4g.small"
}

variable "tracking_db_storage_gb" {
  description = "Initial storage of the tracking database, in GB (it grows to five times that)."
  type        = number
  default     = 20
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

variable "tracking_db_enabled" {
  description = "Create the PostgreSQL database of a team's MLflow tracking server (billed while it exists)."
  type        = bool
  default     = false
}

variable "tracking_db_network" {
  description = "VPC network (self link) in which the tracking database gets its private address; empty: the project's default network."
  type        = string
  default     = ""
}

variable "tracking_db_region" {
  description = "Region of the tracking database."
  type        = string
  default     = "europe-west4"
}

variable "tracking_db_tier" {
  description = "Cloud SQL machine tier of the tracking database."
  type        = string
  default     = "db-custom-1-3840"
}

variable "tracking_db_password" {
  description = "Password of the tracking database's mlflow user (terraform.tfvars; it ends up in the state)."
  type        = string
  default     = ""
  sensitive   = true
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

variable "tracking_db_enabled" {
  description = "Create the PostgreSQL database of a team's MLflow tracking server (billed while it exists)."
  type        = bool
  default     = false
}

variable "tracking_db_sku" {
  description = "SKU of the tracking database's flexible server."
  type        = string
  default     = "GP_Standard_D2ds_v5"
}

variable "tracking_db_password" {
  description = "Password of the tracking database's mlflow user (terraform.tfvars; it ends up in the state)."
  type        = string
  default     = ""
  sensitive   = true
}
{%- endif %}
