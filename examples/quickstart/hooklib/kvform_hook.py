"""Tiny client for the kvform hook API (SPEC §6), standard library only.

Hooks run with the bucket root as working directory and get KVFORM_API (base URL) and
KVFORM_TOKEN in their environment. Import it from a hook with:

    sys.path.insert(0, os.path.join(os.getcwd(), "hooklib"))
    import kvform_hook as kv
"""

import json
import os
import urllib.error
import urllib.request


def _call(method, route, body=None):
    req = urllib.request.Request(
        os.environ["KVFORM_API"].rstrip("/") + route,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": "Bearer " + os.environ["KVFORM_TOKEN"],
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise SystemExit(f"kvform API {method} {route} failed: {e.code} {e.read().decode()}")
    return json.loads(text) if text else {}


def get(namespace, key):
    """The value of a key (secrets come back decrypted), or None when it does not exist."""
    found = _call("GET", "/kv", {"namespace": namespace, "key": key})
    return None if found is None else found.get("value")


def put(key, value, ttl=0):
    """Write vars/job/<own job>/<key>."""
    _call("PUT", "/kv", {"namespace": "vars/job/" + os.environ["JOB"], "key": key, "value": str(value), "ttl": ttl})


def put_secret(key, value):
    """Write secrets/job/<own job>/<key>, encrypted at rest; never print the value."""
    _call("PUT", "/kv/secret", {"namespace": "secrets/job/" + os.environ["JOB"], "key": key, "value": value})


def delete(key):
    _call("DELETE", "/kv", {"namespace": "vars/job/" + os.environ["JOB"], "key": key})


def keys():
    return _call("GET", "/kv/keys") or {}


def demands():
    return _call("GET", "/demands") or {}
