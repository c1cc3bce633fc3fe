# A stand-in IAM binding on the bucket: a terraform_data resource (built into Terraform/OpenTofu,
# no provider) recording who may do what on which bucket.
terraform {
  required_version = ">= 1.5"
}

resource "terraform_data" "binding" {
  input = {
    bucket = var.bucket_name
    member = var.member
    role   = var.role
  }
}
