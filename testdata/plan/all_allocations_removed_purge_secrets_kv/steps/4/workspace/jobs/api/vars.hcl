mode = "a"
