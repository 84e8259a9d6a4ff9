#!/bin/sh
# health_check: the frontend is healthy when the api has published its database URL.
# Read-only: health checks may not write to the store.
set -eu
code=$(curl -s -o /dev/null -w '%{http_code}' -X GET "$KVFORM_API/kv" \
  -H "Authorization: Bearer $KVFORM_TOKEN" -H 'Content-Type: application/json' \
  -d '{"namespace": "vars/job/api", "key": "database_url"}')
[ "$code" = 200 ] || { echo "frontend: api has no database_url yet ($code)"; exit 1; }
echo "frontend on $ALLOCATION_IP: healthy"
