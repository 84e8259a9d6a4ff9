from_hcl = "workspace-value"
