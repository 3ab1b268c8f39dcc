#!/usr/bin/env python3
"""Drives `labelport serve` with the Python client openapi-python-client generated from
the API's OpenAPI document, as a customer's code would.

    client_check.py DOCUMENT PACKAGE_DIR API TOKEN OUTBOX

PACKAGE_DIR is the generated package (imported by its folder name). Every operation of
the document must have its module. With the client: a CSV export delivered as
FILE_STORAGE and an NDJSON export sent by EMAIL are created, polled until SUCCEEDED,
listed, and downloaded through their signed links (the status's, and the e-mail's from
OUTBOX) with the client's own download operation; each file's row count must equal the
tasks the status says were exported. Prints an "ok: ..." line for each check that held,
or "FAIL: ..." and exits 1.
"""
import csv
import email
import email.policy
import importlib
import io
import json
import os
import pkgutil
import re
import sys
import time
from urllib.parse import parse_qs, urlsplit

document_path, package_dir, api, token, outbox = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(package_dir)))
package = os.path.basename(os.path.abspath(package_dir))


def ok(message):
    print(f"ok: {message}", flush=True)


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def generated(module):
    return importlib.import_module(f"{package}.{module}")


# The generator names each operation's module after its operationId, in snake case.
with open(document_path) as f:
    document = json.load(f)
operation_ids = sorted(
    operation["operationId"] for item in document["paths"].values() for operation in item.values()
)
api_package = generated("api")
modules = {
    name
    for tag in pkgutil.iter_modules(api_package.__path__)
    for _, name, _ in pkgutil.iter_modules([os.path.join(api_package.__path__[0], tag.name)])
}
missing = [i for i in operation_ids if re.sub(r"(?<!^)(?=[A-Z])", "_", i).lower() not in modules]
if missing:
    fail(f"the generated client lacks {', '.join(missing)}")
ok(f"the generated client has all {len(operation_ids)} operations of the document")

client_module = generated("client")
models = generated("models")
exports = {name: generated(f"api.exports.{name}") for name in
           ("create_export", "get_export", "list_exports", "download_export")}
client = client_module.AuthenticatedClient(base_url=api, token=token, raise_on_unexpected_status=True)
# The download link is the permission: no token, and its 302 is the documented answer.
anonymous = client_module.Client(base_url=api, raise_on_unexpected_status=True)


def create(request):
    response = exports["create_export"].sync_detailed(project="demo", client=client, body=request)
    if response.status_code != 202 or not isinstance(response.parsed, models.Accepted):
        fail(f"create: {response.status_code} {response.content!r}")
    return response.parsed.id


def finished(export_id, until=lambda status: True):
    """Polls the export's status until it ended and `until` holds."""
    for _ in range(300):
        status = exports["get_export"].sync(export_id, client=client)
        if not isinstance(status, models.Status):
            fail(f"status of {export_id}: {status!r}")
        if status.state not in (models.JobState.QUEUED, models.JobState.RUNNING) and until(status):
            if status.state != models.JobState.SUCCEEDED:
                fail(f"export {export_id} ended {status.state}: {status.to_dict()}")
            return status
        time.sleep(0.2)
    fail(f"export {export_id} still {status.state}, notification {status.notification}")


def download(export_id, link):
    """The file behind a signed link, through the client's download operation."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    response = exports["download_export"].sync_detailed(export_id, client=anonymous, **query)
    if response.status_code != 302:
        fail(f"download {link}: {response.status_code} {response.content!r}")
    file = anonymous.get_httpx_client().get(response.headers["location"])
    if file.status_code != 200:
        fail(f"the file behind {link}: {file.status_code}")
    return file.content


# FILE_STORAGE: the status's signed link.
csv_id = create(models.ExportRequest(
    format_=models.ExportRequestFormat.CSV,
    delivery=models.ExportRequestFILESTORAGE(method=models.ExportRequestFILESTORAGEMethod.FILE_STORAGE),
))
status = finished(csv_id)
rows = list(csv.reader(io.StringIO(download(csv_id, status.download_url).decode("utf-8"))))[1:]
exported = status.progress.tasks_exported
if exported == 0 or len(rows) != exported:
    fail(f"CSV: {len(rows)} rows, the status says {exported} tasks exported")
ok(f"FILE_STORAGE: a CSV export created, SUCCEEDED, downloaded through the status's signed link: {len(rows)} rows, as exported")

# EMAIL: the signed link in the e-mail the outbox received.
recipient = "manager@example.com"
ndjson_id = create(models.ExportRequest(
    format_=models.ExportRequestFormat.NDJSON,
    delivery=models.ExportRequestEMAIL(method=models.ExportRequestEMAILMethod.EMAIL, recipients=[recipient]),
))
status = finished(ndjson_id, until=lambda s: s.notification == models.NotificationState.SENT)
link = None
for name in sorted(os.listdir(outbox)) if os.path.isdir(outbox) else []:
    with open(os.path.join(outbox, name), "rb") as f:
        message = email.message_from_binary_file(f, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(rf"\S+/v1/exports/{re.escape(ndjson_id)}/download\?\S+", text)
    if found and recipient in message["To"]:
        link = found.group(0)
if link is None:
    fail(f"no e-mail to {recipient} with a link to {ndjson_id} in {outbox}")
lines = [line for line in download(ndjson_id, link).decode("utf-8").splitlines() if line.strip()]
exported = status.progress.tasks_exported
if exported == 0 or len(lines) != exported:
    fail(f"NDJSON: {len(lines)} lines, the status says {exported} tasks exported")
ok(f"EMAIL: an NDJSON export created, SUCCEEDED, e-mailed to {recipient}, downloaded through the e-mail's signed link: {len(lines)} tasks, as exported")

listed = exports["list_exports"].sync(project="demo", client=client)
if not isinstance(listed, models.ExportList) or [e.id for e in listed.exports] != [ndjson_id, csv_id]:
    fail(f"list: {listed!r}")
ok("both exports listed by the client, newest first")
