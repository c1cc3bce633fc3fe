variable "prefix" {
  description = "Prefix of the bucket name."
  type        = string
  default     = "demo"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.prefix))
    error_message = "prefix must be 2-41 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "name_seed" {
  description = "Changes the generated bucket name (e.g. the release namespace)."
  type        = string
  default     = ""
}

variable "labels" {
  description = "Labels recorded on the bucket."
  type        = map(string)
  default     = {}
}
