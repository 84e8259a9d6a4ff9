job_config_selector = "prod"
