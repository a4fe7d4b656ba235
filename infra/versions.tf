terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # invoked_via_function_url (the realtime URL): 6.29; aws_pinpointsmsvoicev2_event_destination
      # (SMS receipts): 6.48.
      version = "~> 6.48"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project = "space-api"
      stage   = var.stage
    }
  }
}
