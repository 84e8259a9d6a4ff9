log_level = "info"
threads   = 8
flags     = { b = true, a = "x" }
motd      = "multi\nline \"quoted\""
