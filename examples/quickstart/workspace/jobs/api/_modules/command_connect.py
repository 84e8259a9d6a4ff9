"""post_deploy: point the api at the database it demands (port + password)."""

import os
import sys

import kvform_hook as kv  # put on PYTHONPATH by kvform for every hook

port = kv.get("maand/bucket", "database_port")
host = kv.get("maand/job/database", "worker_0")
password = kv.get("secrets/job/database", "admin_password")
if not (port and host and password):
    sys.exit("api: database is not bootstrapped yet (missing port, worker or password)")
# Every api allocation checks the database; the first one publishes the shared URL, so the
# writer recorded in the state does not depend on which parallel hook finished first.
if os.environ["ALLOCATION_INDEX"] == "0":
    kv.put("database_url", f"postgres://app@{host}:{port}/app")
print(f"api on {os.environ['ALLOCATION_IP']}: database at {host}:{port} (password not shown)")
