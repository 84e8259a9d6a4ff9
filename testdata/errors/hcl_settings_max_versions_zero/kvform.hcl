max_versions = 0
