metrics_path = "/internal/metrics"
scheme = "https"
