greeting = "bye"
