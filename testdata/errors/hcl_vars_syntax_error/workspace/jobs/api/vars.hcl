workers = 4
base_path = "/api
