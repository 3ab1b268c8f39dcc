#!/usr/bin/env python3
"""Runs the three functions as Lambda functions: `cargo lambda watch` serves the Lambda
runtime API, `cargo lambda invoke --data-file` sends events made by
`sam local generate-event` (the shapes AWS sends) with their fields filled in, and the
functions talk to the AWS emulator the test script started (AWS_ENDPOINT_URL...).

Checks: an HTTP API request with JWT claims is accepted (202); the worker's SQS event
produces the export; the notifier's SQS event sends the e-mail; the status and download
routes answer through the API Gateway event shape; an S3 put event on requests/ starts an
export; a bad SQS message is reported as a batch item failure; the worker's schedule event
sweeps the export nothing will run; the functions log Powertools-shaped JSON lines. Exits
non-zero on the first failure.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANAGER = "manager@example.com"
SENDER = "exports@labelport.test"
API_URL = "https://api.labelport.test"
PROJECT = "lam"
passed = 0


def check(condition, what, detail=""):
    global passed
    if not condition:
        print(f"FAIL: {what}\n{detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sam_event(*args):
    out = subprocess.run(["sam", "local", "generate-event", *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
    return json.loads(out.stdout)


HTTP_TEMPLATE = None
SQS_TEMPLATE = None
S3_TEMPLATE = None
SCHEDULE_TEMPLATE = None


def http_event(method, path, route, params, email, body=None, verified="true", query=None, headers=None):
    """An HTTP API event; `email` None is a route without the JWT authorizer."""
    event = json.loads(json.dumps(HTTP_TEMPLATE))
    event["routeKey"] = f"{method} {route}"
    event["rawPath"] = path
    event["rawQueryString"] = urllib.parse.urlencode(query or {})
    if query:
        event["queryStringParameters"] = query
    else:
        event.pop("queryStringParameters", None)
    event.pop("cookies", None)
    event["headers"] = {"content-type": "application/json", "authorization": "Bearer (verified by API Gateway)",
                        **(headers or {})}
    event["pathParameters"] = params
    context = event["requestContext"]
    # Each request has its own id, as API Gateway gives it.
    context["requestId"] = base64.b64encode(uuid.uuid4().bytes[:11]).decode()
    context["routeKey"] = event["routeKey"]
    context["http"]["method"] = method
    context["http"]["path"] = path
    if email is None:
        context.pop("authorizer", None)
        event["headers"].pop("authorization")
    else:
        context["authorizer"]["jwt"]["claims"] = {"email": email, "email_verified": verified, "sub": "user-1",
                                                  "iss": "https://idp.example.com"}
    if body is None:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    else:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    return event


def sqs_event(records):
    event = json.loads(json.dumps(SQS_TEMPLATE))
    template = event["Records"][0]
    event["Records"] = []
    for message_id, body in records:
        record = json.loads(json.dumps(template))
        record["messageId"] = message_id
        record["body"] = body
        event["Records"].append(record)
    return event


# The unique id of the role the platform drops request files with (REQUEST_WRITER_IDS).
WRITER_ID = "AROAWRITEREXAMPLE0001"


def s3_event(bucket, key, size, principal=f"AWS:{WRITER_ID}:platform-drop"):
    event = json.loads(json.dumps(S3_TEMPLATE))
    record = event["Records"][0]
    record["userIdentity"]["principalId"] = principal
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    record["s3"]["object"]["key"] = key
    record["s3"]["object"]["size"] = size
    return event


def invoke(function, event, port, workdir):
    path = os.path.join(workdir, f"{function}-{uuid.uuid4().hex[:8]}.json")
    with open(path, "w") as f:
        json.dump(event, f)
    out = subprocess.run(["cargo", "lambda", "invoke", function, "--data-file", path, "-P", str(port)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        print(out.stdout, out.stderr, file=sys.stderr)
        check(False, f"cargo lambda invoke {function} succeeded")
    return json.loads(out.stdout)


def receive(sqs, url):
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=5).get("Messages", [])
    check(len(got) == 1, f"a message is waiting on {url.rsplit('/', 1)[-1]}")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    return got[0]["Body"]


def main():
    global HTTP_TEMPLATE, SQS_TEMPLATE, S3_TEMPLATE, SCHEDULE_TEMPLATE
    HTTP_TEMPLATE = sam_event("apigateway", "http-api-proxy")
    SQS_TEMPLATE = sam_event("sqs", "receive-message")
    S3_TEMPLATE = sam_event("s3", "put")
    SCHEDULE_TEMPLATE = sam_event("cloudwatch", "scheduled-event")

    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    ses = boto3.client("ses", endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SES"))
    suffix = uuid.uuid4().hex[:12]
    bucket = f"lambda-e2e-{suffix}"
    s3.create_bucket(Bucket=bucket)
    export_queue = sqs.create_queue(QueueName=f"export-{suffix}")["QueueUrl"]
    notify_queue = sqs.create_queue(QueueName=f"notify-{suffix}")["QueueUrl"]
    ses.verify_email_identity(EmailAddress=SENDER)
    link_secret = f"links-{suffix}"
    boto3.client("secretsmanager").create_secret(Name=link_secret, SecretString=uuid.uuid4().hex + uuid.uuid4().hex)
    external_id_secret = f"external-ids-{suffix}"
    boto3.client("secretsmanager").create_secret(Name=external_id_secret,
                                                 SecretString=uuid.uuid4().hex + uuid.uuid4().hex)

    workdir = tempfile.mkdtemp(prefix="labelport-lambda-")
    data = os.path.join(workdir, "data")
    subprocess.run(["cargo", "run", "--quiet", "--locked", "--bin", "labelport", "--", "generate", "--tasks", "600",
                    "--mode", "entity_form", "--project", PROJECT, "--out", data, "--tasks-per-file", "250",
                    "--compression", "zstd"], cwd=ROOT, check=True)
    for folder, _, files in os.walk(data):
        for name in files:
            path = os.path.join(folder, name)
            s3.upload_file(path, bucket, os.path.relpath(path, data))
    project_dir = os.path.join(data, "projects", PROJECT)

    env_file = os.path.join(workdir, "lambda.env")
    env = {
        "PLATFORM_BUCKET": bucket, "EXPORT_QUEUE_URL": export_queue, "NOTIFY_QUEUE_URL": notify_queue,
        "PUBLIC_API_URL": API_URL, "SENDER_EMAIL": SENDER, "S3_FORCE_PATH_STYLE": "true",
        "LINK_KEYS_SECRET": link_secret, "REQUEST_WRITER_IDS": WRITER_ID,
        "EXTERNAL_ID_SECRET": external_id_secret,
        "DELIVERY_PRINCIPALS": "arn:aws:iam::123456789012:role/w,arn:aws:iam::123456789012:role/a",
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL_SES": os.environ["AWS_ENDPOINT_URL_SES"],
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_LOG_LEVEL": "INFO",
        # The sweep below ends a queued export at once instead of after six hours.
        "STALE_QUEUED_MINUTES": "0",
    }
    with open(env_file, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in env.items())

    port = free_port()
    log = open(os.path.join(workdir, "watch.log"), "w")
    watch = subprocess.Popen(["cargo", "lambda", "watch", "--ignore-changes", "-P", str(port),
                              "--env-file", env_file], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            check(False, "cargo lambda watch started", open(log.name).read())
        export_id, correlation_id = run(s3, sqs, bucket, export_queue, notify_queue, project_dir, port, workdir)
        check_logs(log.name, export_id, correlation_id)
    finally:
        watch.terminate()
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            watch.kill()
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"{passed} passed, 0 failed")


def run(s3, sqs, bucket, export_queue, notify_queue, project_dir, port, workdir):
    route = "/v1/projects/{project}/exports"
    # A labeler is refused by the same router behind the JWT authorizer's claims.
    response = invoke("export-api", http_event("POST", f"/v1/projects/{PROJECT}/exports", route, {"project": PROJECT},
                                               "labeler1@example.com", '{"format":"CSV"}'), port, workdir)
    check(response["statusCode"] == 403, "export-api: a labeler gets 403", response)
    # A manager's address in a token that does not say it is verified is not the manager.
    response = invoke("export-api", http_event("POST", f"/v1/projects/{PROJECT}/exports", route, {"project": PROJECT},
                                               MANAGER, '{"format":"CSV"}', verified="false"), port, workdir)
    check(response["statusCode"] == 403 and "EMAIL_NOT_VERIFIED" in response["body"],
          "export-api: an unverified e-mail gets 403", response)

    # The caller names the correlation id the export's log lines carry in all three functions.
    correlation_id = f"e2e-{uuid.uuid4().hex[:12]}"
    response = invoke("export-api", http_event("POST", f"/v1/projects/{PROJECT}/exports", route, {"project": PROJECT},
                                               MANAGER, '{"format":"CSV","delivery":{"method":"EMAIL"}}',
                                               headers={"x-correlation-id": correlation_id}), port, workdir)
    check(response["statusCode"] == 202, "export-api: the manager's request is accepted (202)", response)
    body = json.loads(base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"])
    export_id = body["id"]
    location = {k.lower(): v for k, v in response["headers"].items()}.get("location")
    check(location == f"/v1/exports/{export_id}", "export-api: Location names the export", response)
    job = json.loads(s3.get_object(Bucket=bucket, Key=f"jobs/{export_id}.json")["Body"].read())
    check(job.get("correlationId") == correlation_id, "the job records the request's x-correlation-id", job)

    message = receive(sqs, export_queue)
    result = invoke("export-worker", sqs_event([("m-1", message)]), port, workdir)
    check(result["batchItemFailures"] == [], "export-worker: the export message succeeds", result)

    message = receive(sqs, notify_queue)
    result = invoke("export-notifier", sqs_event([("n-1", message), ("n-2", message)]), port, workdir)
    # One copy sends; the other finds it sent, or finds the live claim and goes back to the
    # queue until the claim expires (a batch item failure), never a second e-mail.
    held = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    check(held in ([], ["n-1"], ["n-2"]), "export-notifier: a batch with the message twice sends once", result)

    identity = invoke("export-api", http_event("GET", f"/v1/projects/{PROJECT}/delivery-identity",
                                               "/v1/projects/{project}/delivery-identity", {"project": PROJECT},
                                               MANAGER), port, workdir)
    identity_body = json.loads(identity["body"])
    check(identity["statusCode"] == 200 and identity_body["externalId"].startswith("labelport-")
          and len(identity_body["principals"]) == 2,
          "export-api: the delivery identity carries the tenant's external id from Secrets Manager", identity)

    status = invoke("export-api", http_event("GET", f"/v1/exports/{export_id}", "/v1/exports/{id}", {"id": export_id},
                                             MANAGER), port, workdir)
    status_body = json.loads(status["body"])
    check(status["statusCode"] == 200 and status_body["state"] == "SUCCEEDED", "export-api: status is SUCCEEDED", status)

    # The status's link is signed; the download route has no JWT authorizer and takes it alone.
    link = urllib.parse.urlsplit(status_body["downloadUrl"])
    check(link.path == f"/v1/exports/{export_id}/download", "the status gives a signed link to the download route", link)
    download = invoke("export-api", http_event("GET", link.path, "/v1/exports/{id}/download", {"id": export_id}, None,
                                               query=dict(urllib.parse.parse_qsl(link.query))), port, workdir)
    headers = {k.lower(): v for k, v in download["headers"].items()}
    check(download["statusCode"] == 302 and "X-Amz-Signature=" in headers.get("location", ""),
          "export-api: the signed link redirects to a presigned URL, with no token", download)
    tampered = dict(urllib.parse.parse_qsl(link.query))
    tampered["exp"] = str(int(tampered["exp"]) + 1)
    refused = invoke("export-api", http_event("GET", link.path, "/v1/exports/{id}/download", {"id": export_id}, None,
                                              query=tampered), port, workdir)
    check(refused["statusCode"] == 403, "export-api: a tampered link is 403", refused)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "infra", "check_export.py"), "csv", headers["location"],
                          project_dir], capture_output=True, text=True)
    check(out.returncode == 0, f"the CSV behind the link matches the generated project: {out.stdout.strip()}", out.stderr)

    emails = json.loads(subprocess.run([sys.executable, os.path.join(ROOT, "infra", "sent_emails.py"),
                                        os.environ["AWS_ENDPOINT_URL_SES"]], capture_output=True, text=True,
                                       check=True).stdout)
    mine = [m for m in emails if export_id in json.dumps(m)]
    check(len(mine) == 1, "export-notifier: exactly one e-mail for two deliveries", mine)
    check(f"{API_URL}/v1/exports/{export_id}/download?exp=" in json.dumps(mine[0]),
          "the e-mail carries a signed link to the API's download route")

    # An S3 put on requests/ starts an export as the requester the metadata names.
    s3.put_object(Bucket=bucket, Key=f"requests/{PROJECT}/drop-1.json", Body=b'{"format":"NDJSON"}',
                  Metadata={"requested-by": MANAGER})
    result = invoke("export-api", s3_event(bucket, f"requests/{PROJECT}/drop-1.json", 19), port, workdir)
    check(len(result.get("accepted", [])) == 1, "export-api: the S3 drop is accepted", result)
    response = json.loads(s3.get_object(Bucket=bucket, Key=f"responses/{PROJECT}/drop-1.json")["Body"].read())
    check(response["export"]["id"] == result["accepted"][0], "the drop's response file names the export", response)
    check("Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"requests/{PROJECT}/drop-1.json"),
          "the handled request file is deleted")

    # A file put by anyone but the request writers is refused, and deleted.
    s3.put_object(Bucket=bucket, Key=f"requests/{PROJECT}/drop-2.json", Body=b'{"format":"NDJSON"}',
                  Metadata={"requested-by": MANAGER})
    result = invoke("export-api", s3_event(bucket, f"requests/{PROJECT}/drop-2.json", 19,
                                           principal="AWS:AROAINTRUDEREXAMPLE:someone"), port, workdir)
    check(result.get("accepted") == [], "export-api: a drop by another principal is not accepted", result)
    refused = json.loads(s3.get_object(Bucket=bucket, Key=f"responses/{PROJECT}/drop-2.json")["Body"].read())
    check(refused["error"]["code"] == "NOT_A_REQUEST_WRITER", "the response file says why", refused)
    check("Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"requests/{PROJECT}/drop-2.json"),
          "the refused request file is deleted")

    result = invoke("export-worker", sqs_event([("m-bad", "not json")]), port, workdir)
    check([f["itemIdentifier"] for f in result["batchItemFailures"]] == ["m-bad"],
          "export-worker: a malformed message is reported as a batch item failure", result)

    # The drop's export never ran (its message is still queued): the schedule's sweep,
    # here with no patience, ends it and announces it to the notifier.
    dropped = response["export"]["id"]
    swept = invoke("export-worker", SCHEDULE_TEMPLATE, port, workdir)
    check(swept.get("ended") == [dropped], "export-worker: the schedule event sweeps the abandoned export", swept)
    announced = json.loads(receive(sqs, notify_queue))
    state = json.loads(s3.get_object(Bucket=bucket, Key=f"jobs/{dropped}.json")["Body"].read())
    check(announced == {"exportId": dropped, "correlationId": state.get("correlationId")} and state.get("correlationId"),
          "the sweep announces the ended export to the notifier, with its correlation id", (announced, state))
    check(state["state"] == "FAILED" and state["error"]["code"] == "NOT_STARTED",
          "the swept export is FAILED NOT_STARTED", state)
    return export_id, correlation_id


POWERTOOLS_KEYS = ("level", "message", "timestamp", "service", "cold_start", "function_name",
                   "function_request_id", "xray_trace_id")


def check_logs(path, export_id, correlation_id):
    """Every function's lines are JSON objects with Powertools' keys at the top level, and
    one export's lines carry the same correlation_id in the API, the worker and the notifier."""
    lines = []
    for line in open(path):
        start = line.find("{")
        if start < 0:
            continue
        try:
            lines.append(json.loads(line[start:]))
        except ValueError:
            continue
    started = [l for l in lines if l.get("message") == "export started" and l.get("export_id") == export_id]
    check(started, "the worker logged the export's start as JSON", open(path).read()[-4000:])
    line = started[0]
    check(all(k in line for k in POWERTOOLS_KEYS + ("correlation_id", "export_id", "project")),
          f"log lines carry {', '.join(POWERTOOLS_KEYS)}, correlation_id, export_id and project at the top level",
          line)
    camel = ("coldStart", "requestId", "xrayTraceId", "functionName", "exportId", "correlationId")
    # (The embedded-metric-format lines, `_aws`, are metrics with their own names.)
    records = [l for l in lines if "_aws" not in l]
    check(not any(k in l for l in records for k in camel), "no log line has camelCase keys",
          [l for l in records if any(k in l for k in camel)][:3])
    ours = {l.get("message"): l for l in lines if l.get("correlation_id") == correlation_id}
    told = [ours.get(m) for m in ("export queued", "export started", "export succeeded", "notified", "message handled")]
    check(all(told) and all(l.get("export_id", export_id) == export_id for l in told)
          and len({l.get("function_name") for l in told}) == 3,
          "the API's, the worker's and the notifier's lines for the export carry the request's correlation_id",
          [l for l in lines if l.get("export_id") == export_id or l.get("correlation_id") == correlation_id])
    check(not any("X-Amz-Signature" in json.dumps(l) or "sig=" in json.dumps(l) for l in lines),
          "no presigned URL or signed link is ever logged")


if __name__ == "__main__":
    main()
