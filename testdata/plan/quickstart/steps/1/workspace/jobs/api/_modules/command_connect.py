"""post_deploy: point the api at the database it demands (port + password)."""

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "hooklib"))
import kvform_hook as kv  # noqa: E402

port = kv.get("maand/bucket", "database_port")
host = kv.get("maand/job/database", "worker_0")
password = kv.get("secrets/job/database", "admin_password")
if not (port and host and password):
    sys.exit("api: database is not bootstrapped yet (missing port, worker or password)")
kv.put("database_url", f"postgres://app@{host}:{port}/app")
print(f"api on {os.environ['ALLOCATION_IP']}: database at {host}:{port} (password not shown)")
