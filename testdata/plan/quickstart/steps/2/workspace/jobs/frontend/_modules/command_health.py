"""health_check (read-only): healthy once the api has published its database URL."""

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "hooklib"))
import kvform_hook as kv  # noqa: E402

if kv.get("vars/job/api", "database_url") is None:
    sys.exit("frontend: the api has not published database_url yet")
print(f"frontend on {os.environ['ALLOCATION_IP']}: healthy")
