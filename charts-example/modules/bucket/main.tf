# A stand-in "bucket": real Terraform that needs no cloud account. The bucket name is a random
# pet name under the prefix; the bucket's manifest is written as a local file in the runner.
terraform {
  required_version = ">= 1.5"
  required_providers {
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    local = {
      source  = "hashicorp/local"
      version = "~> 2.5"
    }
  }
}

resource "random_pet" "bucket" {
  prefix = var.prefix
  length = 2
}

resource "local_file" "bucket_manifest" {
  filename = "${path.module}/.bucket/${random_pet.bucket.id}.json"
  content = jsonencode({
    name   = random_pet.bucket.id
    labels = var.labels
  })
}
