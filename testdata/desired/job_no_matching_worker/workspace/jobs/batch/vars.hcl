owner = "data-team"
