"""kvform hook helper: read and write the kvform store from a hook (stdlib only).

kvform puts this module on PYTHONPATH for every hook and sets KVFORM_API (base URL)
and KVFORM_TOKEN (valid while the hook runs) in its environment.

    import kvform_hook as kv
    port = kv.get("maand/bucket", "api_port")
    kv.put("schema_version", "7")                  # vars/job/$JOB
    kv.put("replicas", 3, type="number")           # typed (SPEC §9)
    kv.put_secret("db_password", pw, ttl=3600)     # secrets/job/$JOB, encrypted
    kv.rollout_order(["10.0.0.2", "10.0.0.1"])     # pre_deploy / cli hooks only
    with kv.semaphore("leave-cluster"):
        ...

Every failure raises KvformHookError carrying the HTTP status and the API's error
(and, for 403, the access rule that denied it).
"""

import http.client
import json
import os
import threading
import urllib.parse

__all__ = [
    "KvformHookError", "get", "put", "delete", "put_secret", "delete_secret",
    "keys", "demands", "acquire", "release", "semaphore", "status", "rollout_order",
]


class KvformHookError(Exception):
    """A hook API request failed: .status (HTTP code), .error (message), .rule (403 only)."""

    def __init__(self, method, path, status, error, rule=None):
        self.status = status
        self.error = error
        self.rule = rule
        msg = "kvform hook API %s %s failed with %s: %s" % (method, path, status, error)
        if rule:
            msg += " (rule: %s)" % rule
        super().__init__(msg)


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise KvformHookError("-", "-", 0, "%s is not set: run this inside a kvform hook" % name)
    return value


def _job():
    return _env("JOB")


# One kept-alive connection per thread (http.client connections are not thread-safe)
# and per process (a forked child must not share the parent's socket). urlopen opened a
# new TCP connection per call and sent `Connection: close`: the connect, the server's
# accept and the teardown cost more than the request itself (issue 11: p99 of a GET).
# Plain http.client also ignores http_proxy, which urlopen would have applied to 127.0.0.1.
_local = threading.local()


def _connection(base):
    conn = getattr(_local, "conn", None)
    if conn is not None and _local.key == (os.getpid(), base):
        return conn, True
    if conn is not None:
        conn.close()
    parts = urllib.parse.urlsplit(base)
    # Long enough for POST /semaphore/acquire, which may wait up to an hour.
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=3700)
    _local.conn, _local.key = conn, (os.getpid(), base)
    return conn, False


def _drop_connection():
    conn = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
    _local.conn = None


def _call(method, path, body=None):
    base = _env("KVFORM_API").rstrip("/")
    url = base + path
    data = None
    headers = {"Authorization": "Bearer " + _env("KVFORM_TOKEN")}
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    prefix = urllib.parse.urlsplit(base).path
    for attempt in (0, 1):
        conn, reused = _connection(base)
        try:
            conn.request(method, prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
            break
        except (http.client.HTTPException, OSError) as e:
            _drop_connection()
            # A kept-alive connection the server closed while idle fails on first use;
            # retry once on a fresh one. A fresh connection failing is a real error.
            if reused and attempt == 0 and not isinstance(e, TimeoutError):
                continue
            raise KvformHookError(method, path, 0, "cannot reach %s: %s" % (url, e)) from None
    if resp.will_close:
        _drop_connection()
    if status >= 400:
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text)
            error, rule = parsed.get("error", text), parsed.get("rule")
        except (ValueError, AttributeError):
            error, rule = text, None
        raise KvformHookError(method, path, status, error, rule)
    return json.loads(raw.decode("utf-8") or "null")


def version(namespace, key):
    """The live version of namespace/key (for `cas`), 0 when it does not exist."""
    try:
        return _call("GET", "/kv", {"namespace": namespace, "key": key})["version"]
    except KvformHookError as e:
        if e.status == 404:
            return 0
        raise


def get(namespace, key, default=None):
    """The value of namespace/key, or `default` when the key does not exist."""
    try:
        return _call("GET", "/kv", {"namespace": namespace, "key": key})["value"]
    except KvformHookError as e:
        if e.status == 404:
            return default
        raise


def _ttl(ttl):
    """Seconds as an int, or a duration string as the API takes it ("1h", "30m", "P30D")."""
    return ttl.strip() if isinstance(ttl, str) else int(ttl)


def put(key, value, ttl=0, type=None, description=None, cas=None):
    """Write vars/job/$JOB key (ttl: seconds or a duration such as "1h"; 0 = never expires).

    `type` is one of string, number, boolean, datetime, date, duration, json; the API
    refuses a value that does not fit it. Without it the key is a string. `cas`: the live
    version expected (`version()`; 0 = must not exist); a stale one raises
    KvformHookError with status 412."""
    if isinstance(value, bool):
        value = "true" if value else "false"  # str(True) is "True", not a boolean
    elif isinstance(value, (list, dict)):
        value = json.dumps(value, sort_keys=True)
    body = {"namespace": "vars/job/" + _job(), "key": key, "value": str(value), "ttl": _ttl(ttl)}
    if type is not None:
        body["type"] = type
    if description is not None:
        body["description"] = description
    if cas is not None:
        body["cas"] = int(cas)
    _call("PUT", "/kv", body)


def delete(key, cas=None):
    """Tombstone vars/job/$JOB key. Returns False if it did not exist. `cas` as for put."""
    return _delete("/kv", "vars/job/", key, cas)


def put_secret(key, value, ttl=0, cas=None):
    """Write secrets/job/$JOB key, stored encrypted. `cas` as for put."""
    body = {"namespace": "secrets/job/" + _job(), "key": key, "value": str(value), "ttl": _ttl(ttl)}
    if cas is not None:
        body["cas"] = int(cas)
    _call("PUT", "/kv/secret", body)


def delete_secret(key, cas=None):
    """Tombstone secrets/job/$JOB key. Returns False if it did not exist. `cas` as for put."""
    return _delete("/kv/secret", "secrets/job/", key, cas)


def _delete(path, prefix, key, cas=None):
    body = {"namespace": prefix + _job(), "key": key}
    if cas is not None:
        body["cas"] = int(cas)
    try:
        _call("DELETE", path, body)
        return True
    except KvformHookError as e:
        if e.status == 404:
            return False
        raise


def keys():
    """{namespace: [keys]} for vars/job/$JOB and secrets/job/$JOB."""
    return _call("GET", "/kv/keys")["namespaces"]


def demands():
    """Downstream commands that demand this job+command: [{job, command, demand_config}]."""
    return _call("GET", "/demands")


def acquire(name, capacity=1, timeout=600):
    """Take a slot of the job+event semaphore `name` for this allocation (waits up to
    `timeout` s, at most 3600; 408 after). Acquiring a slot it already holds succeeds."""
    return _call(
        "POST", "/semaphore/acquire",
        {"name": name, "capacity": int(capacity), "timeout_seconds": int(timeout)},
    )


def release(name):
    """Give back the slot of semaphore `name` (released automatically when the hook exits)."""
    _call("POST", "/semaphore/release", {"name": name})


def status(name):
    """Semaphore `name` of this job+event: {name, capacity, holders (allocation ids),
    waiting, available}; one nobody holds is free with capacity 1."""
    return _call("GET", "/semaphore/status?name=" + urllib.parse.quote(name, safe=""))


class semaphore:
    """`with semaphore("name"):` acquires on entry, releases on exit."""

    def __init__(self, name, capacity=1, timeout=600):
        self.name, self.capacity, self.timeout = name, capacity, timeout

    def __enter__(self):
        acquire(self.name, self.capacity, self.timeout)
        return self

    def __exit__(self, *exc):
        release(self.name)
        return False


def rollout_order(hosts):
    """Override maand/job/$JOB rollout_order for this apply (pre_deploy and cli hooks)."""
    _call("PUT", "/kv", {"namespace": "maand/job/" + _job(), "key": "rollout_order",
                         "value": ",".join(hosts)})
