hooks {
  timeout  = "10 minutes and a bit"
  api_port = 70000
}
