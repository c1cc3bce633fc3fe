variable "prefix" {
  description = "Prefix of the bucket name."
  type        = string
  default     = "demo"
}

variable "labels" {
  description = "Labels recorded on the bucket."
  type        = map(string)
  default     = {}
}
