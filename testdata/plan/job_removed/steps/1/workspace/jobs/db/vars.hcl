pool = 5
