output "bucket_name" {
  description = "Name of the bucket."
  value       = random_pet.bucket.id
}

output "bucket_url" {
  description = "URL of the bucket."
  value       = "s3://${random_pet.bucket.id}"
}
