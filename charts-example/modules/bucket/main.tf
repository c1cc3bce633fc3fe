# A stand-in "bucket": real Terraform (and OpenTofu) that needs no cloud account and no provider
# download, so it plans and applies anywhere. The bucket is a terraform_data resource (built
# in) whose name is derived from the prefix and the name seed.
terraform {
  required_version = ">= 1.5"
}

locals {
  bucket_name = "${var.prefix}-${substr(sha256("${var.prefix}/${var.name_seed}"), 0, 8)}"
}

resource "terraform_data" "bucket" {
  input = {
    name   = local.bucket_name
    labels = var.labels
  }
}
