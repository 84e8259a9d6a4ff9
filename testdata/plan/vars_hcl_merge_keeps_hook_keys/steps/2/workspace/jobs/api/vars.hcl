a = 2
b = "x"
