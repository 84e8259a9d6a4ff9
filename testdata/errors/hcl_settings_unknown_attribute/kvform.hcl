# kvform.hcl with a misspelt setting
max_version = 5
