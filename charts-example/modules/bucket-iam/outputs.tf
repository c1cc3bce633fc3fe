output "binding" {
  description = "The binding as recorded."
  value       = "${terraform_data.binding.output.member} is ${terraform_data.binding.output.role} on ${terraform_data.binding.output.bucket}"
}
