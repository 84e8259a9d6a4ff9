max_versions = "10"
job_config_selector = 3
