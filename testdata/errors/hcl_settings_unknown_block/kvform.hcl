job_config_selector = ""

hook {
  timeout = "5m"
}
