variable "stage" {
  description = "Deployment stage: names every resource and the Secrets Manager prefix (space-api/<stage>/)."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.stage)
    error_message = "stage must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the whole stage."
  type        = string
  default     = "us-east-1"
}

variable "architecture" {
  description = "Lambda architecture; must match the build (make build ARCH=...)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "memory_size" {
  description = "Memory of every function, in MB. Lambda gives CPU in proportion: 128 fits, 256 starts faster."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MB."
  }
}

variable "timeout_seconds" {
  description = "Function timeout. API Gateway answers 503 after 30 s whatever this is."
  type        = number
  default     = 10

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 29
    error_message = "timeout_seconds must be between 1 and 29 (the HTTP API integration limit is 30 s)."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function: caps what one function can take from the account and from the table. -1 reserves nothing (accounts with a low concurrency quota)."
  type        = number
  default     = 50
}

variable "throttle_rate_limit" {
  description = "API Gateway steady-state requests per second, across all routes (per-key limits are enforced by the functions)."
  type        = number
  default     = 200
}

variable "throttle_burst_limit" {
  description = "API Gateway burst, across all routes."
  type        = number
  default     = 400
}

variable "log_retention_days" {
  description = "Retention of function and access logs."
  type        = number
  default     = 365
}

variable "log_level" {
  description = "RUST_LOG of every function."
  type        = string
  default     = "info"
}

variable "artifacts_dir" {
  description = "Where `make build` leaves <binary>/bootstrap.zip (cargo lambda's target/lambda)."
  type        = string
  default     = "../target/lambda"
}

variable "alarm_email" {
  description = "Where alarms are mailed (subscription to confirm by mail); empty for none — the SNS topic is an output either way."
  type        = string
  default     = ""
}

variable "cursor_secret_generation" {
  description = "Bump to rotate CURSOR_SECRET (the secret pagination cursors are sealed with): cursors issued before stop working, nothing else does."
  type        = number
  default     = 1
}

variable "worker_timeout_seconds" {
  description = "The dispatcher's timeout: a batch of job messages runs at once, each webhook delivery waits up to 15 s."
  type        = number
  default     = 60
}

variable "worker_concurrency" {
  description = "At most this many dispatcher invocations read the jobs queue at once (2 to 1000)."
  type        = number
  default     = 20
}
