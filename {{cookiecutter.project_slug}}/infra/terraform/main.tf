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

# --- optional team tracking database (tracking_db_enabled = true) ---------------------------------
# PostgreSQL for `mlflow server --backend-store-uri` (runs, registry); the bucket above holds the
# artifacts. Private subnets only, encrypted with the bucket's key, its password in Secrets Manager.
resource "aws_db_subnet_group" "tracking" {
  count      = var.tracking_db_enabled ? 1 : 0
  name       = "${var.bucket_name}-tracking"
  subnet_ids = var.tracking_db_subnet_ids

  lifecycle {
    precondition {
      condition     = length(var.tracking_db_subnet_ids) >= 2
      error_message = "tracking_db_subnet_ids: name two or more private subnets, in different availability zones."
    }
  }
}

resource "aws_security_group" "tracking" {
  count       = var.tracking_db_enabled ? 1 : 0
  name        = "${var.bucket_name}-tracking"
  description = "PostgreSQL of the MLflow tracking server, reachable from the allowed private ranges only."
  vpc_id      = var.tracking_db_vpc_id

  lifecycle {
    precondition {
      condition     = var.tracking_db_vpc_id != ""
      error_message = "tracking_db_vpc_id: name the VPC of the tracking database's subnets."
    }
    precondition {
      condition     = length(var.tracking_db_allowed_cidrs) > 0
      error_message = "tracking_db_allowed_cidrs: name the private ranges the tracking server connects from."
    }
  }
}

resource "aws_vpc_security_group_ingress_rule" "tracking" {
  for_each          = var.tracking_db_enabled ? toset(var.tracking_db_allowed_cidrs) : toset([])
  security_group_id = aws_security_group.tracking[0].id
  description       = "PostgreSQL from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_db_parameter_group" "tracking" {
  count  = var.tracking_db_enabled ? 1 : 0
  name   = "${var.bucket_name}-tracking"
  family = "postgres17"

  # TLS only, and statements that change the schema or take over a second logged.
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "aws_iam_role" "tracking_monitoring" {
  count = var.tracking_db_enabled ? 1 : 0
  name  = "${var.bucket_name}-tracking-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "tracking_monitoring" {
  count      = var.tracking_db_enabled ? 1 : 0
  role       = aws_iam_role.tracking_monitoring[0].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "tracking" {
  count                               = var.tracking_db_enabled ? 1 : 0
  identifier                          = "${var.bucket_name}-tracking"
  engine                              = "postgres"
  engine_version                      = "17"
  instance_class                      = var.tracking_db_instance_class
  allocated_storage                   = var.tracking_db_storage_gb
  max_allocated_storage               = var.tracking_db_storage_gb * 5
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.artifacts.arn
  db_name                             = "mlflow"
  username                            = "mlflow"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.artifacts.arn
  iam_database_authentication_enabled = true
  parameter_group_name                = aws_db_parameter_group.tracking[0].name
  db_subnet_group_name                = aws_db_subnet_group.tracking[0].name
  vpc_security_group_ids              = [aws_security_group.tracking[0].id]
  publicly_accessible                 = false
  multi_az                            = true
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.bucket_name}-tracking-final"
  auto_minor_version_upgrade          = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.tracking_monitoring[0].arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.artifacts.arn
  # RDS checks the monitoring role's permissions when it creates the instance.
  depends_on = [aws_iam_role_policy_attachment.tracking_monitoring]
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

# --- optional team tracking database (tracking_db_enabled = true) ---------------------------------
# PostgreSQL for `mlflow server --backend-store-uri` (runs, registry); the bucket above holds the
# artifacts. A private address in the VPC only (no public IP), TLS only.
locals {
  tracking_network = coalesce(var.tracking_db_network, "projects/${var.project_id}/global/networks/default")
}

resource "google_compute_global_address" "tracking" {
  count         = var.tracking_db_enabled ? 1 : 0
  name          = "${var.bucket_name}-tracking"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = local.tracking_network
}

resource "google_service_networking_connection" "tracking" {
  count                   = var.tracking_db_enabled ? 1 : 0
  network                 = local.tracking_network
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.tracking[0].name]
}

resource "google_sql_database_instance" "tracking" {
  #checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY refuses connections without TLS; client certificates on top would have to be issued to every tracking server.
  count               = var.tracking_db_enabled ? 1 : 0
  name                = "${var.bucket_name}-tracking"
  database_version    = "POSTGRES_18"
  region              = var.tracking_db_region
  deletion_protection = true
  depends_on          = [google_service_networking_connection.tracking]

  settings {
    # Enterprise, which takes custom tiers (PostgreSQL 16 and later default to Enterprise Plus).
    edition                     = "ENTERPRISE"
    tier                        = var.tracking_db_tier
    availability_type           = "REGIONAL"
    disk_autoresize             = true
    deletion_protection_enabled = true

    ip_configuration {
      ipv4_enabled    = false
      private_network = local.tracking_network
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }

    # Connections, schema changes and errors in Cloud Logging (pgAudit for the roles too).
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }
    database_flags {
      name  = "log_connections"
      value = "on"
    }
    database_flags {
      name  = "log_disconnections"
      value = "on"
    }
    database_flags {
      name  = "log_duration"
      value = "on"
    }
    database_flags {
      name  = "log_hostname"
      value = "on"
    }
    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }
    database_flags {
      name  = "log_min_messages"
      value = "error"
    }
    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }
    database_flags {
      name  = "log_statement"
      value = "ddl"
    }
    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }
    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }
  }

  lifecycle {
    precondition {
      condition     = var.tracking_db_password != ""
      error_message = "tracking_db_password: set it (in terraform.tfvars, which git ignores) to create the tracking database."
    }
  }
}

resource "google_sql_database" "tracking" {
  count    = var.tracking_db_enabled ? 1 : 0
  name     = "mlflow"
  instance = google_sql_database_instance.tracking[0].name
}

resource "google_sql_user" "tracking" {
  count    = var.tracking_db_enabled ? 1 : 0
  name     = "mlflow"
  instance = google_sql_database_instance.tracking[0].name
  password = var.tracking_db_password
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

# --- the virtual network (the GPU VM's and the tracking database's) and the optional GPU VM --------
resource "azurerm_virtual_network" "ml" {
  count               = var.gpu_instance_enabled || var.tracking_db_enabled ? 1 : 0
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

# --- optional team tracking database (tracking_db_enabled = true) ---------------------------------
# PostgreSQL for `mlflow server --backend-store-uri` (runs, registry); the container above holds
# the artifacts. In a subnet of the virtual network, with a private DNS name and no public access.
resource "azurerm_subnet" "tracking" {
  count                = var.tracking_db_enabled ? 1 : 0
  name                 = "tracking-db"
  resource_group_name  = azurerm_resource_group.ml.name
  virtual_network_name = azurerm_virtual_network.ml[0].name
  address_prefixes     = ["10.20.2.0/24"]

  delegation {
    name = "postgresql"
    service_delegation {
      name    = "Microsoft.DBforPostgreSQL/flexibleServers"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

# No inbound rule: Azure's defaults admit the virtual network's own traffic only.
resource "azurerm_network_security_group" "tracking" {
  count               = var.tracking_db_enabled ? 1 : 0
  name                = "{{ cookiecutter.project_slug | replace('_', '-') }}-tracking-nsg"
  location            = azurerm_resource_group.ml.location
  resource_group_name = azurerm_resource_group.ml.name
}

resource "azurerm_subnet_network_security_group_association" "tracking" {
  count                     = var.tracking_db_enabled ? 1 : 0
  subnet_id                 = azurerm_subnet.tracking[0].id
  network_security_group_id = azurerm_network_security_group.tracking[0].id
}

resource "azurerm_private_dns_zone" "tracking" {
  count               = var.tracking_db_enabled ? 1 : 0
  name                = "{{ cookiecutter.project_slug | replace('_', '-') }}-tracking.private.postgres.database.azure.com"
  resource_group_name = azurerm_resource_group.ml.name
}

resource "azurerm_private_dns_zone_virtual_network_link" "tracking" {
  count                 = var.tracking_db_enabled ? 1 : 0
  name                  = "tracking-db"
  resource_group_name   = azurerm_resource_group.ml.name
  private_dns_zone_name = azurerm_private_dns_zone.tracking[0].name
  virtual_network_id    = azurerm_virtual_network.ml[0].id
}

resource "azurerm_postgresql_flexible_server" "tracking" {
  #checkov:skip=CKV2_AZURE_57:VNet integration (a delegated subnet, public access off) gives it a private address only; a private endpoint is the way for a server with public access.
  count                         = var.tracking_db_enabled ? 1 : 0
  name                          = "{{ cookiecutter.project_slug | replace('_', '-') }}-tracking"
  resource_group_name           = azurerm_resource_group.ml.name
  location                      = azurerm_resource_group.ml.location
  version                       = "16"
  sku_name                      = var.tracking_db_sku
  storage_mb                    = 32768
  delegated_subnet_id           = azurerm_subnet.tracking[0].id
  private_dns_zone_id           = azurerm_private_dns_zone.tracking[0].id
  public_network_access_enabled = false
  backup_retention_days         = 14
  geo_redundant_backup_enabled  = true
  administrator_login           = "mlflow"
  administrator_password        = var.tracking_db_password
  depends_on                    = [azurerm_private_dns_zone_virtual_network_link.tracking]

  lifecycle {
    precondition {
      condition     = var.tracking_db_password != ""
      error_message = "tracking_db_password: set it (in terraform.tfvars, which git ignores) to create the tracking database."
    }
  }
}

resource "azurerm_postgresql_flexible_server_database" "tracking" {
  count     = var.tracking_db_enabled ? 1 : 0
  name      = "mlflow"
  server_id = azurerm_postgresql_flexible_server.tracking[0].id
  charset   = "UTF8"
  collation = "en_US.utf8"
}
{%- endif %}
