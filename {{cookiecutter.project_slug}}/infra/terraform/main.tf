{%- if cookiecutter.cloud == 'aws' -%}
provider "aws" {
  region = var.region
}

# --- the bucket: DVC remote (dvc/) and MLflow artifacts (mlflow/) ---------------------------------
resource "aws_s3_bucket" "artifacts" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket for the logs; add one for production.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles the storage cost; versioning covers mistakes.
  #checkov:skip=CKV2_AWS_62:No consumer of bucket event notifications in this stub.
  bucket = var.bucket_name
}

resource "aws_s3_bucket_versioning" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "artifacts" {
  description             = "Encrypts the artifacts bucket of ${var.bucket_name}."
  deletion_window_in_days = 30
  enable_key_rotation     = true
  # The account administers the key; IAM policies (the training VM's role) grant its use.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_s3_bucket_server_side_encryption_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.artifacts.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "artifacts" {
  bucket                  = aws_s3_bucket.artifacts.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "artifacts" {
  bucket = aws_s3_bucket.artifacts.id
  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

# --- optional GPU training VM (gpu_instance_enabled = true) ---------------------------------------
resource "aws_iam_role" "trainer" {
  count = var.gpu_instance_enabled ? 1 : 0
  name  = "${var.bucket_name}-trainer"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy" "trainer_artifacts" {
  count = var.gpu_instance_enabled ? 1 : 0
  name  = "artifacts-bucket"
  role  = aws_iam_role.trainer[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [aws_s3_bucket.artifacts.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
        Resource = ["${aws_s3_bucket.artifacts.arn}/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.artifacts.arn]
      },
    ]
  })
}

resource "aws_iam_instance_profile" "trainer" {
  count = var.gpu_instance_enabled ? 1 : 0
  name  = "${var.bucket_name}-trainer"
  role  = aws_iam_role.trainer[0].name
}

resource "aws_instance" "trainer" {
  count                = var.gpu_instance_enabled ? 1 : 0
  ami                  = var.gpu_ami_id
  instance_type        = var.gpu_instance_type
  iam_instance_profile = aws_iam_instance_profile.trainer[0].name
  ebs_optimized        = true
  monitoring           = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    encrypted   = true
    volume_size = var.gpu_disk_gb
  }

  tags = {
    Name = "${var.bucket_name}-trainer"
  }

  lifecycle {
    precondition {
      condition     = var.gpu_ami_id != ""
      error_message = "gpu_ami_id: set it to a GPU image (an AWS Deep Learning AMI id) to create the training VM."
    }
  }
}
{%- elif cookiecutter.cloud == 'gcp' -%}
provider "google" {
  project = var.project_id
}

# --- the bucket: DVC remote (dvc/) and MLflow artifacts (mlflow/) ---------------------------------
resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:Access logging needs a second bucket for the logs; add one for production.
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
    }
    action {
      type = "Delete"
    }
  }
}

# --- optional GPU training VM (gpu_instance_enabled = true) ---------------------------------------
resource "google_service_account" "trainer" {
  count        = var.gpu_instance_enabled ? 1 : 0
  account_id   = "trainer"
  display_name = "Training VM of ${var.bucket_name}"
}

resource "google_storage_bucket_iam_member" "trainer" {
  count  = var.gpu_instance_enabled ? 1 : 0
  bucket = google_storage_bucket.artifacts.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.trainer[0].email}"
}

resource "google_compute_instance" "trainer" {
  #checkov:skip=CKV_GCP_38:Boot disk encryption with a customer-managed key needs a KMS key ring; Google-managed keys encrypt it.
  count        = var.gpu_instance_enabled ? 1 : 0
  name         = "${var.bucket_name}-trainer"
  machine_type = var.gpu_machine_type
  zone         = var.zone

  boot_disk {
    initialize_params {
      image = var.gpu_image
      size  = var.gpu_disk_gb
    }
  }

  guest_accelerator {
    type  = var.gpu_type
    count = 1
  }

  scheduling {
    on_host_maintenance = "TERMINATE"
    automatic_restart   = true
  }

  # No access_config: no public IP. Reach it with `gcloud compute ssh --tunnel-through-iap`.
  network_interface {
    network = "default"
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  metadata = {
    block-project-ssh-keys = true
    enable-oslogin         = "TRUE"
  }

  service_account {
    email  = google_service_account.trainer[0].email
    scopes = ["cloud-platform"]
  }
}
{%- else -%}
provider "azurerm" {
  features {}
  # The storage account accepts Entra ID only (no shared keys), for Terraform too.
  storage_use_azuread = true
}

resource "azurerm_resource_group" "ml" {
  name     = "{{ cookiecutter.project_slug | replace('_', '-') }}-rg"
  location = var.location
}

# --- the container: DVC remote (dvc/) and MLflow artifacts (mlflow/) ------------------------------
resource "azurerm_storage_account" "artifacts" {
  #checkov:skip=CKV_AZURE_33:Queue service logging does not apply: the account serves blobs only.
  #checkov:skip=CKV_AZURE_59:DVC and MLflow clients reach the account over the internet, authenticated by Entra ID.
  #checkov:skip=CKV_AZURE_206:Zone- or geo-redundant replication costs more; versioning covers mistakes.
  #checkov:skip=CKV2_AZURE_1:Customer-managed keys need a Key Vault; Microsoft-managed keys encrypt the data.
  #checkov:skip=CKV2_AZURE_33:A private endpoint needs a private network for every client; not in this stub.
  name                            = var.storage_account_name
  resource_group_name             = azurerm_resource_group.ml.name
  location                        = azurerm_resource_group.ml.location
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = var.noncurrent_version_days
    }
    container_delete_retention_policy {
      days = var.noncurrent_version_days
    }
  }

  sas_policy {
    expiration_period = "01.00:00:00"
  }
}

resource "azurerm_storage_container" "artifacts" {
  #checkov:skip=CKV2_AZURE_21:Read-request logging needs a Log Analytics workspace; add one for production.
  name                  = "artifacts"
  storage_account_id    = azurerm_storage_account.artifacts.id
  container_access_type = "private"
}

# --- optional GPU training VM (gpu_instance_enabled = true) ---------------------------------------
resource "azurerm_virtual_network" "ml" {
  count               = var.gpu_instance_enabled ? 1 : 0
  name                = "{{ cookiecutter.project_slug | replace('_', '-') }}-vnet"
  address_space       = ["10.20.0.0/16"]
  location            = azurerm_resource_group.ml.location
  resource_group_name = azurerm_resource_group.ml.name
}

resource "azurerm_subnet" "trainer" {
  count                = var.gpu_instance_enabled ? 1 : 0
  name                 = "trainer"
  resource_group_name  = azurerm_resource_group.ml.name
  virtual_network_name = azurerm_virtual_network.ml[0].name
  address_prefixes     = ["10.20.1.0/24"]
}

# No inbound rule: Azure's defaults deny traffic from outside the virtual network.
resource "azurerm_network_security_group" "trainer" {
  count               = var.gpu_instance_enabled ? 1 : 0
  name                = "{{ cookiecutter.project_slug | replace('_', '-') }}-trainer-nsg"
  location            = azurerm_resource_group.ml.location
  resource_group_name = azurerm_resource_group.ml.name
}

resource "azurerm_subnet_network_security_group_association" "trainer" {
  count                     = var.gpu_instance_enabled ? 1 : 0
  subnet_id                 = azurerm_subnet.trainer[0].id
  network_security_group_id = azurerm_network_security_group.trainer[0].id
}

resource "azurerm_network_interface" "trainer" {
  count               = var.gpu_instance_enabled ? 1 : 0
  name                = "{{ cookiecutter.project_slug | replace('_', '-') }}-trainer-nic"
  location            = azurerm_resource_group.ml.location
  resource_group_name = azurerm_resource_group.ml.name

  # Private address only: reach it through Azure Bastion or a VPN.
  ip_configuration {
    name                          = "internal"
    subnet_id                     = azurerm_subnet.trainer[0].id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_linux_virtual_machine" "trainer" {
  count                           = var.gpu_instance_enabled ? 1 : 0
  name                            = "{{ cookiecutter.project_slug | replace('_', '-') }}-trainer"
  resource_group_name             = azurerm_resource_group.ml.name
  location                        = azurerm_resource_group.ml.location
  size                            = var.gpu_vm_size
  admin_username                  = "azureuser"
  network_interface_ids           = [azurerm_network_interface.trainer[0].id]
  disable_password_authentication = true
  allow_extension_operations      = false
  encryption_at_host_enabled      = true

  admin_ssh_key {
    username   = "azureuser"
    public_key = var.admin_ssh_public_key
  }

  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
    disk_size_gb         = var.gpu_disk_gb
  }

  source_image_reference {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }

  identity {
    type = "SystemAssigned"
  }

  lifecycle {
    precondition {
      condition     = var.admin_ssh_public_key != ""
      error_message = "admin_ssh_public_key: set it to your SSH public key to create the training VM."
    }
  }
}

resource "azurerm_role_assignment" "trainer_blob" {
  count                = var.gpu_instance_enabled ? 1 : 0
  scope                = azurerm_storage_account.artifacts.id
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_linux_virtual_machine.trainer[0].identity[0].principal_id
}
{%- endif %}
