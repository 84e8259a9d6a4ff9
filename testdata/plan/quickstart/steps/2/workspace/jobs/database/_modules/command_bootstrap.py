"""pre_deploy: make sure the database has an admin password before anything deploys."""

import os
import secrets

import kvform_hook as kv  # put on PYTHONPATH by kvform for every hook

if kv.get("secrets/job/database", "admin_password") is None:
    kv.put_secret("admin_password", secrets.token_urlsafe(24))
    print("database: created admin_password")
else:
    print("database: admin_password already set")
kv.put("bootstrapped_version", os.environ.get("NEW_VERSION", ""))
