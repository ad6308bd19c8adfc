"""Creates the resources scripts/fuzz aims the campaign at, and writes the schemathesis
configuration that names them: a tenant with a document, a schema, a secret, a cron, a pending
job and a deployed function; an image imported from the host's busybox-static; a sandbox running
it, a session on the sandbox with a process, and a service.

Usage: fuzz_setup.py URL TOKEN CONFIG_OUT
"""

import hashlib
import io
import json
import sys
import tarfile
import urllib.request

URL, TOKEN, CONFIG = sys.argv[1], sys.argv[2], sys.argv[3]
TENANT = "fuzz"
IMAGE = "fuzz.local/busybox:latest"
APPLETS = ["sh", "sleep", "cat", "echo", "ls", "wc", "httpd", "mkdir", "true"]


def call(method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    request = urllib.request.Request(URL + path, data=data, method=method)
    request.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=120) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def tar_bytes(entries):
    """A tar of (name, bytes-or-None-for-symlink-to-busybox, mode) entries."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def busybox_archive():
    """A docker-archive tar of one layer: /bin/busybox and its applets."""
    with open("/bin/busybox", "rb") as binary:
        busybox = binary.read()
    layer = tar_bytes([("bin/busybox", busybox, 0o755)] + [(f"bin/{a}", None, 0o777) for a in APPLETS])
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_digest]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [IMAGE], "Layers": [layer_digest + "/layer.tar"]}])
    return tar_bytes([
        ("manifest.json", manifest.encode(), 0o644),
        (config_name, config, 0o644),
        (layer_digest + "/layer.tar", layer, 0o644),
    ])


def main():
    t = f"/api/tenants/{TENANT}"
    call("POST", "/api/tenants", {"id": TENANT})
    document = call("POST", f"{t}/documents", {"table": "notes", "fields": {"title": "first", "n": 1}})
    call("PUT", f"{t}/schema/people", {"table": "people", "fields": [{"name": "name", "field_type": "string", "required": True}],
                                       "indexes": [{"name": "by_name", "fields": ["name"]}]})
    call("PUT", f"{t}/secrets/api-key", {"value": "not-a-real-key"})
    call("POST", f"{t}/crons", {"name": "nightly", "schedule": {"type": "cron", "expression": "0 3 * * *"},
                                 "mutation": {"type": "insert", "table": "ticks", "fields": {}}})
    job = call("POST", f"{t}/schedule", {"run_after_ms": 31_536_000_000,
                                         "mutation": {"type": "insert", "table": "later", "fields": {}}})
    call("PUT", f"{t}/functions", {"modules": {"notes.js": (
        'import { query, mutation } from "@nimbus/nimbus/server";\n'
        'export const list = query({ handler: async (ctx) => ctx.db.query("notes").collect() });\n'
        'export const add = mutation({ handler: async (ctx, args) => ctx.db.insert("notes", { title: String(args.title) }) });\n'
    )}})
    call("POST", "/api/images/import", busybox_archive(), "application/x-tar")
    root = {"kind": "oci_image", "source": {"kind": "reference", "reference": IMAGE}}
    sandbox = call("POST", f"{t}/sandboxes", {"spec": {"root": root, "process": {"argv": ["sleep", "100000"]}},
                                             "labels": {"purpose": "fuzz"}})
    sandbox_id = sandbox["metadata"]["id"]
    session = call("POST", "/api/sessions", {"tenantId": TENANT, "target": {"sandbox": {"id": sandbox_id}},
                                             "channels": ["stdio", "exec", "files"], "requestedTtlMs": 3_600_000})
    session_id = session["metadata"]["id"]
    process = call("POST", f"/api/sessions/{session_id}/exec", {"argv": ["cat"]})
    call("PUT", f"/api/sessions/{session_id}/files?path=/tmp/hello.txt", b"hello\n", "application/octet-stream")
    call("POST", f"{t}/services", {"metadata": {"name": "web"}, "spec": {"backend": {"kind": "sandbox", "sandbox": {
        "owner": {"kind": "service"}, "root": root,
        "process": {"argv": ["sh", "-c", "mkdir -p /srv && echo hi > /srv/index.html && exec httpd -f -p 8000 -h /srv"]}}}}})
    values = {
        "tenant_id": TENANT, "table": "notes", "document_id": document["id"], "sandbox_id": sandbox_id,
        "session_id": session_id, "process_id": process["processId"], "service_name": "web",
        "cron_name": "nightly", "job_id": job["job_id"], "name": "api-key", "channel": "stdio", "port": 8000,
    }
    with open(CONFIG, "w") as out:
        out.write("# Written by scripts/fuzz_setup.py: the resources the campaign is aimed at.\n[parameters]\n")
        for name, value in values.items():
            out.write(f'"path.{name}" = {json.dumps(value)}\n')
        # Long polls and followed streams would hold every request for the whole timeout.
        out.write('"query.follow" = false\n"query.timeoutMs" = 50\n')
    print(json.dumps(values))


main()
