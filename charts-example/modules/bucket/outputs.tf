output "bucket_name" {
  description = "Name of the bucket."
  value       = terraform_data.bucket.output.name
}

output "bucket_url" {
  description = "URL of the bucket."
  value       = "s3://${terraform_data.bucket.output.name}"
}
