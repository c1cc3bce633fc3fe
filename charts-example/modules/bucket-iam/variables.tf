variable "bucket_name" {
  description = "Bucket the binding applies to (from the bucket module's outputs)."
  type        = string
}

variable "member" {
  description = "Principal granted access."
  type        = string
}

variable "role" {
  description = "reader or writer."
  type        = string
  default     = "reader"

  validation {
    condition     = contains(["reader", "writer"], var.role)
    error_message = "role must be reader or writer."
  }
}
