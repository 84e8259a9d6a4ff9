"""health_check (read-only): healthy once the api has published its database URL."""

import os
import sys

import kvform_hook as kv  # put on PYTHONPATH by kvform for every hook

if kv.get("vars/job/api", "database_url") is None:
    sys.exit("frontend: the api has not published database_url yet")
print(f"frontend on {os.environ['ALLOCATION_IP']}: healthy")
