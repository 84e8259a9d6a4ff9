# Quickstart bucket settings (these are the defaults, written out for reference).
job_config_selector = ""
max_versions        = 10

state {
  path = "data/kvform.db"
}

hooks {
  timeout  = "5m"
  api_port = 0
}
