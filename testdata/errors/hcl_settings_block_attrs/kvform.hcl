state = { path = "data/kvform.db" }

hooks {
  timout = "5m"
}

hooks {
  api_port = 8080
}
