# Merged into vars/job/api (hooks may add more keys there).
base_path = "/api/v1"
workers   = 4
debug     = false
