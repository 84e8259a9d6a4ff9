metrics_path = "/metrics"
