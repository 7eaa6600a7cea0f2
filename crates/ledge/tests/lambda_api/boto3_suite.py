"""Drives every Lambda operation and error ledge supports through boto3.

Run by crates/ledge/tests/lambda_api.rs against a real `ledge control`:
    python3 boto3_suite.py ENDPOINT ACCESS_KEY SECRET_KEY [suite]
Suites: api (default), concurrency. Exits non-zero on the first failed check.
"""

import base64
import concurrent.futures
import datetime
import hashlib
import io
import json
import os
import socket
import sys
import urllib.request
import zipfile

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

ENDPOINT, KEY, SECRET = sys.argv[1], sys.argv[2], sys.argv[3]
SUITE = sys.argv[4] if len(sys.argv) > 4 else "api"
ROLE = "arn:aws:iam::000000000000:role/edge-role"
ACCOUNT = "000000000000"
REGION = "us-east-1"
CHECKS = 0


def conforms(shape, value, where):
    """Checks a JSON response value against botocore's shape: no member the model lacks."""
    if value is None:
        return
    kind = shape.type_name
    if kind == "structure":
        check(isinstance(value, dict), f"{where}: expected an object")
        for key, item in value.items():
            check(key in shape.members, f"{where}: member {key!r} is not in the model")
            conforms(shape.members[key], item, f"{where}.{key}")
    elif kind == "list":
        check(isinstance(value, list), f"{where}: expected a list")
        for i, item in enumerate(value):
            conforms(shape.member, item, f"{where}[{i}]")
    elif kind == "map":
        check(isinstance(value, dict), f"{where}: expected a map")
        for key, item in value.items():
            conforms(shape.value, item, f"{where}[{key!r}]")
    elif kind in ("integer", "long"):
        check(isinstance(value, int), f"{where}: expected an integer, got {value!r}")
    elif kind == "string":
        check(isinstance(value, str), f"{where}: expected a string, got {value!r}")
        if shape.enum:
            check(value in shape.enum, f"{where}: {value!r} not in {shape.enum}")
    elif kind == "boolean":
        check(isinstance(value, bool), f"{where}: expected a boolean")


def validate_response(operation_model, response_dict, **_):
    """Every JSON response body is checked against the service model (output or error)."""
    body = response_dict.get("body") or b""
    if not body or operation_model.has_streaming_output or operation_model.name == "Invoke":
        return
    doc = json.loads(body)
    if response_dict["status_code"] >= 300:
        check(set(doc) <= {"Type", "message", "Message", "Reason"}, f"error body {doc}")
        return
    if operation_model.output_shape is not None:
        conforms(operation_model.output_shape, doc, operation_model.name)


def client(secret=SECRET, key=KEY):
    lam = boto3.client(
        "lambda",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, max_pool_connections=50,
                      parameter_validation=False),
    )
    lam.meta.events.register("before-parse.lambda.*", validate_response)
    return lam


def make_zip(source="exports.handler = async () => 'ok';\n", name="index.js"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, source)
    return buf.getvalue()


def sha_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def expect_error(fn, code, status, contains=None):
    try:
        fn()
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        st = e.response["ResponseMetadata"]["HTTPStatusCode"]
        msg = e.response["Error"].get("Message", "")
        check(got == code, f"expected {code}, got {got}: {msg}")
        check(st == status, f"expected status {status} for {code}, got {st}")
        check(e.response["ResponseMetadata"].get("RequestId"), "error without a request id")
        if contains:
            check(contains in msg, f"message {msg!r} lacks {contains!r}")
        return e
    raise AssertionError(f"expected {code}, call succeeded")


def create(lam, name, **kw):
    args = dict(
        FunctionName=name,
        Runtime="nodejs20.x",
        Role=ROLE,
        Handler="index.handler",
        Code={"ZipFile": kw.pop("zip", make_zip())},
    )
    args.update(kw)
    return lam.create_function(**args)


def arn(name, qualifier=None):
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def suite_functions(lam):
    code = make_zip()
    r = create(lam, "hello", zip=code, Description="greets", Timeout=5, MemorySize=256,
               Environment={"Variables": {"GREETING": "hi"}}, Architectures=["x86_64"])
    check(r["ResponseMetadata"]["HTTPStatusCode"] == 201, "create is 201")
    check(r["FunctionArn"] == arn("hello"), r["FunctionArn"])
    check(r["Version"] == "$LATEST", "create returns $LATEST")
    check(r["CodeSha256"] == sha_b64(code), "CodeSha256 is base64 sha256")
    check(r["CodeSize"] == len(code), "CodeSize")
    check(r["State"] == "Active" and r["LastUpdateStatus"] == "Successful", "state")
    check(r["Environment"]["Variables"] == {"GREETING": "hi"}, "environment")
    check(r["Timeout"] == 5 and r["MemorySize"] == 256, "timeout/memory")
    datetime.datetime.strptime(r["LastModified"], "%Y-%m-%dT%H:%M:%S.%f%z")
    lam.get_waiter("function_active_v2").wait(FunctionName="hello")

    # Every way of naming the function.
    for name in ["hello", arn("hello"), f"{ACCOUNT}:function:hello", "hello:$LATEST"]:
        c = lam.get_function_configuration(FunctionName=name)
        check(c["FunctionName"] == "hello", f"lookup by {name}")

    g = lam.get_function(FunctionName="hello")
    check(g["Configuration"]["RevisionId"] == r["RevisionId"], "revision stable on read")
    with urllib.request.urlopen(g["Code"]["Location"]) as resp:
        check(resp.read() == code, "Code.Location downloads the exact zip")

    # Publish: version 1, then no new version while nothing changed.
    v1 = lam.publish_version(FunctionName="hello", Description="first")
    check(v1["Version"] == "1" and v1["FunctionArn"] == arn("hello", "1"), "publish v1")
    check(v1["Description"] == "first", "publish description")
    again = lam.publish_version(FunctionName="hello")
    check(again["Version"] == "1", "unchanged $LATEST publishes no new version")
    expect_error(lambda: lam.publish_version(FunctionName="hello", CodeSha256="x" * 44),
                 "InvalidParameterValueException", 400, "is different from current CodeSHA256")
    expect_error(lambda: lam.publish_version(FunctionName="hello", RevisionId="nope"),
                 "PreconditionFailedException", 412)

    # Update configuration with and without RevisionId.
    cur = lam.get_function_configuration(FunctionName="hello")
    u = lam.update_function_configuration(FunctionName="hello", Description="v2",
                                          RevisionId=cur["RevisionId"],
                                          Environment={"Variables": {}})
    check(u["RevisionId"] != cur["RevisionId"], "revision changes on write")
    check("Environment" not in u, "empty Variables clears the environment")
    lam.get_waiter("function_updated_v2").wait(FunctionName="hello")
    expect_error(lambda: lam.update_function_configuration(
        FunctionName="hello", Description="x", RevisionId=cur["RevisionId"]),
        "PreconditionFailedException", 412)
    expect_error(lambda: lam.update_function_configuration(FunctionName="hello", Timeout=0),
                 "ValidationException", 400, "timeout")
    expect_error(lambda: lam.update_function_configuration(FunctionName="hello",
                                                           MemorySize=20000),
                 "ValidationException", 400, "memorySize")
    expect_error(lambda: lam.update_function_configuration(
        FunctionName="hello", Environment={"Variables": {"AWS_REGION": "x"}}),
        "InvalidParameterValueException", 400)
    expect_error(lambda: lam.update_function_configuration(FunctionName="hello:1",
                                                           Description="x"),
                 "InvalidParameterValueException", 400)

    # Update code, publish with it.
    code2 = make_zip("exports.handler = async () => 'two';\n")
    uc = lam.update_function_code(FunctionName="hello", ZipFile=code2)
    check(uc["CodeSha256"] == sha_b64(code2) and uc["Version"] == "$LATEST", "update code")
    v2 = lam.publish_version(FunctionName="hello", CodeSha256=sha_b64(code2))
    check(v2["Version"] == "2" and v2["Description"] == "v2", "publish v2")
    code3 = make_zip("exports.handler = async () => 'three';\n")
    v3 = lam.update_function_code(FunctionName="hello", ZipFile=code3, Publish=True)
    check(v3["Version"] == "3" and v3["CodeSha256"] == sha_b64(code3), "update code + publish")
    expect_error(lambda: lam.update_function_code(FunctionName="hello", ZipFile=b"not a zip"),
                 "InvalidParameterValueException", 400, "Could not unzip")
    expect_error(lambda: lam.update_function_code(FunctionName="hello", ZipFile=code,
                                                  RevisionId="stale"),
                 "PreconditionFailedException", 412)

    # Versions are immutable snapshots.
    g1 = lam.get_function_configuration(FunctionName="hello", Qualifier="1")
    check(g1["CodeSha256"] == sha_b64(code) and g1["Description"] == "first", "v1 immutable")
    check(g1["FunctionArn"] == arn("hello", "1"), "qualified ARN")
    check(lam.get_function(FunctionName="hello:2")["Configuration"]["Version"] == "2", "name:2")
    expect_error(lambda: lam.get_function(FunctionName="hello:9"),
                 "ResourceNotFoundException", 404, arn("hello", "9"))
    expect_error(lambda: lam.get_function(FunctionName="hello:1", Qualifier="2"),
                 "InvalidParameterValueException", 400)

    vs = lam.list_versions_by_function(FunctionName="hello")["Versions"]
    check([v["Version"] for v in vs] == ["$LATEST", "1", "2", "3"], "versions listed in order")
    check(vs[0]["FunctionArn"] == arn("hello", "$LATEST"), "$LATEST entry ARN")

    # Deleting a version never frees its number.
    lam.delete_function(FunctionName="hello", Qualifier="3")
    expect_error(lambda: lam.get_function(FunctionName="hello", Qualifier="3"),
                 "ResourceNotFoundException", 404)
    lam.update_function_configuration(FunctionName="hello", Description="v4")
    v4 = lam.publish_version(FunctionName="hello")
    check(v4["Version"] == "4", "version numbers are never reused")
    expect_error(lambda: lam.delete_function(FunctionName="hello", Qualifier="$LATEST"),
                 "InvalidParameterValueException", 400)


def suite_errors(lam):
    expect_error(lambda: create(lam, "hello"), "ResourceConflictException", 409,
                 "Function already exist: hello")
    expect_error(lambda: create(lam, "bad name"), "ValidationException", 400, "functionName")
    expect_error(lambda: create(lam, "x" * 65), "ValidationException", 400)
    expect_error(lambda: create(lam, "rt", Runtime="cobol85"),
                 "InvalidParameterValueException", 400, "cobol85")
    expect_error(lambda: create(lam, "badzip", zip=b"PK\x03\x04 nope"),
                 "InvalidParameterValueException", 400, "Could not unzip")
    expect_error(lambda: create(lam, "role", Role="not-a-role"), "ValidationException", 400,
                 "role")
    expect_error(lambda: create(lam, "mem", MemorySize=64), "ValidationException", 400)
    expect_error(lambda: create(lam, "tmo", Timeout=901), "ValidationException", 400)
    expect_error(lambda: create(lam, "arch", Architectures=["mips"]),
                 "ValidationException", 400)
    expect_error(lambda: create(lam, "env", Environment={"Variables": {"1BAD": "x"}}),
                 "ValidationException", 400)
    expect_error(lambda: create(lam, "envbig", Environment={"Variables": {"BIG": "x" * 5000}}),
                 "InvalidParameterValueException", 400)
    expect_error(lambda: lam.get_function(
        FunctionName="arn:aws:lambda:eu-west-1:000000000000:function:hello"),
        "InvalidParameterValueException", 400)
    expect_error(lambda: lam.get_function(FunctionName="missing"), "ResourceNotFoundException",
                 404, "Function not found: " + arn("missing"))
    expect_error(lambda: lam.delete_function(FunctionName="missing"),
                 "ResourceNotFoundException", 404)
    # Failed creates leave nothing behind.
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    check(names == ["hello"], f"failed creates left functions: {names}")


def suite_raw_http():
    """Bodies and signatures a well-behaved SDK never sends."""
    creds = botocore.credentials.Credentials(KEY, SECRET)

    def send(method, path, body=b"", headers=None, signer_creds=creds, when=None):
        req = botocore.awsrequest.AWSRequest(method=method, url=ENDPOINT + path, data=body,
                                             headers=headers or {})
        signer = botocore.auth.SigV4Auth(signer_creds, "lambda", REGION)
        real_now = botocore.auth.get_current_datetime
        if when is not None:
            botocore.auth.get_current_datetime = lambda: when  # a skewed client clock
        try:
            signer.add_auth(req)
        finally:
            botocore.auth.get_current_datetime = real_now
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body or None, method=method,
                                   headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    status, headers, body = send("POST", "/2015-03-31/functions", b"{not json")
    check(status == 400 and headers.get("x-amzn-errortype") == "InvalidRequestContentException",
          f"malformed JSON: {status} {headers}")
    status, headers, body = send("POST", "/2015-03-31/functions",
                                 json.dumps({"FunctionName": 5, "Role": ROLE}).encode())
    check(status == 400, f"wrong member type: {status} {body}")
    status, headers, body = send("GET", "/2015-03-31/nothing-here")
    check(status == 404 and headers.get("x-amzn-errortype") == "UnknownOperationException",
          f"unknown operation: {status} {headers}")
    status, headers, body = send("GET", "/2015-03-31/functions/",
                                 signer_creds=botocore.credentials.Credentials(KEY, "wrong"))
    check(status == 403 and headers.get("x-amzn-errortype") == "InvalidSignatureException",
          f"wrong secret: {status} {headers}")
    check(json.loads(body).get("message", "").startswith("The request signature we calculated"),
          body)
    status, headers, body = send("GET", "/2015-03-31/functions/",
                                 signer_creds=botocore.credentials.Credentials("AKIDNOPE", "x"))
    check(status == 403 and headers.get("x-amzn-errortype") == "UnrecognizedClientException",
          f"unknown key: {status} {headers}")
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    status, headers, body = send("GET", "/2015-03-31/functions/",
                                 when=old.replace(tzinfo=None))
    check(status == 403 and b"Signature expired" in body, f"expired: {status} {body}")
    r = urllib.request.Request(ENDPOINT + "/2015-03-31/functions/")
    try:
        urllib.request.urlopen(r)
        check(False, "unsigned request accepted")
    except urllib.error.HTTPError as e:
        check(e.code == 403 and e.headers.get("x-amzn-ErrorType")
              == "MissingAuthenticationTokenException", "unsigned request")
    # Oversized: answered from the declared length, before the body is read.
    host = ENDPOINT.split("//", 1)[1]
    h, p = host.split(":")
    with socket.create_connection((h, int(p))) as sock:
        sock.sendall((f"POST /2015-03-31/functions HTTP/1.1\r\nHost: {host}\r\n"
                      "Content-Type: application/json\r\nContent-Length: 69905068\r\n\r\n")
                     .encode())
        reply = b""
        while b"}" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    check(reply.startswith(b"HTTP/1.1 413"), f"oversized: {reply[:200]!r}")
    check(b"RequestEntityTooLargeException" in reply and b"69905067" in reply, reply)


def suite_list(lam):
    for i in range(7):
        create(lam, f"page-{i:02d}", Publish=True)
    seen, marker = [], None
    while True:
        kw = {"MaxItems": 3}
        if marker:
            kw["Marker"] = marker
        page = lam.list_functions(**kw)
        check(len(page["Functions"]) <= 3, "page size honoured")
        seen += [f["FunctionName"] for f in page["Functions"]]
        check("State" not in (page["Functions"] or [{}])[0], "ListFunctions omits State")
        marker = page.get("NextMarker")
        if not marker:
            break
    check(seen == sorted(seen) and len(seen) == len(set(seen)) and "page-06" in seen,
          f"pagination: {seen}")
    all_versions = [(f["FunctionName"], f["Version"])
                    for f in lam.get_paginator("list_functions")
                    .paginate(FunctionVersion="ALL").build_full_result()["Functions"]]
    check(("page-03", "1") in all_versions and ("page-03", "$LATEST") in all_versions,
          "FunctionVersion=ALL lists versions")
    check(lam.list_functions(MaxItems=10000)["Functions"].__len__() <= 50, "at most 50")
    expect_error(lambda: lam.list_functions(MaxItems=0), "ValidationException", 400)
    empty = lam.list_functions(FunctionVersion="ALL", MasterRegion="us-east-1")
    check(empty["Functions"] == [], "MasterRegion gives no replicas")


def suite_aliases_tags(lam):
    a = lam.create_alias(FunctionName="hello", Name="live", FunctionVersion="1",
                         Description="prod")
    check(a["AliasArn"] == arn("hello", "live") and a["FunctionVersion"] == "1", "alias")
    expect_error(lambda: lam.create_alias(FunctionName="hello", Name="live",
                                          FunctionVersion="1"),
                 "ResourceConflictException", 409)
    expect_error(lambda: lam.create_alias(FunctionName="hello", Name="123",
                                          FunctionVersion="1"), "ValidationException", 400)
    expect_error(lambda: lam.create_alias(FunctionName="hello", Name="gone",
                                          FunctionVersion="99"),
                 "ResourceNotFoundException", 404)
    check(lam.get_alias(FunctionName="hello", Name="live")["Description"] == "prod", "get alias")
    via = lam.get_function_configuration(FunctionName="hello", Qualifier="live")
    check(via["Version"] == "1", "qualifier resolves an alias")
    u = lam.update_alias(FunctionName="hello", Name="live", FunctionVersion="2",
                         RevisionId=a["RevisionId"])
    check(u["FunctionVersion"] == "2" and u["RevisionId"] != a["RevisionId"], "update alias")
    expect_error(lambda: lam.update_alias(FunctionName="hello", Name="live",
                                          FunctionVersion="1", RevisionId=a["RevisionId"]),
                 "PreconditionFailedException", 412)
    lam.create_alias(FunctionName="hello", Name="beta", FunctionVersion="$LATEST")
    names = [x["Name"] for x in lam.list_aliases(FunctionName="hello")["Aliases"]]
    check(names == ["beta", "live"], f"list aliases {names}")
    only = lam.list_aliases(FunctionName="hello", FunctionVersion="2")["Aliases"]
    check([x["Name"] for x in only] == ["live"], "list aliases by version")
    expect_error(lambda: lam.delete_function(FunctionName="hello", Qualifier="2"),
                 "ResourceConflictException", 409)
    lam.delete_alias(FunctionName="hello", Name="beta")
    expect_error(lambda: lam.get_alias(FunctionName="hello", Name="beta"),
                 "ResourceNotFoundException", 404)

    lam.tag_resource(Resource=arn("hello"), Tags={"team": "edge", "env": "test"})
    check(lam.list_tags(Resource=arn("hello"))["Tags"] == {"team": "edge", "env": "test"},
          "tags")
    lam.untag_resource(Resource=arn("hello"), TagKeys=["env"])
    check(lam.list_tags(Resource=arn("hello"))["Tags"] == {"team": "edge"}, "untag")
    check(lam.get_function(FunctionName="hello")["Tags"] == {"team": "edge"}, "GetFunction tags")
    expect_error(lambda: lam.list_tags(Resource=arn("missing")), "ResourceNotFoundException",
                 404)
    s = lam.get_account_settings()
    check(s["AccountUsage"]["FunctionCount"] >= 1, "account settings")
    check(s["AccountLimit"]["CodeSizeUnzipped"] == 262144000, "account limits")

    # Deleting the function removes everything.
    lam.delete_function(FunctionName="hello")
    expect_error(lambda: lam.get_function(FunctionName="hello"), "ResourceNotFoundException",
                 404)
    expect_error(lambda: lam.get_alias(FunctionName="hello", Name="live"),
                 "ResourceNotFoundException", 404)


def suite_concurrency(lam):
    create(lam, "busy")
    zips = [make_zip(f"exports.handler = async () => {i};\n") for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(
            lambda z: lam.update_function_code(FunctionName="busy", ZipFile=z, Publish=True),
            zips))
    versions = sorted(int(r["Version"]) for r in results)
    check(versions == list(range(1, 25)), f"distinct consecutive versions: {versions}")
    for z, r in zip(zips, results):
        stored = lam.get_function_configuration(FunctionName="busy", Qualifier=r["Version"])
        check(stored["CodeSha256"] == sha_b64(z), "each version holds the code that made it")
    # Many publishes with nothing changed: all get the newest version, none is cut.
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        same = list(pool.map(lambda _: lam.publish_version(FunctionName="busy")["Version"],
                             range(12)))
    check(set(same) == {"24"}, f"no new version without a change: {same}")
    # Many concurrent config updates: none lost (each write sees the one before).
    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda i: lam.tag_resource(Resource=arn("busy"), Tags={f"k{i}": "v"}),
                      range(12)))
    check(len(lam.list_tags(Resource=arn("busy"))["Tags"]) == 12, "no lost tag writes")


def suite_s3(lam):
    """Packages land in the S3 bucket ledge was given, and come back out of it."""
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=REGION)
    code = make_zip("exports.handler = async () => 's3';\n")
    create(lam, "in-s3", zip=code)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="ledge-test").get("Contents", [])]
    want = f"pkgs/packages/{hashlib.sha256(code).hexdigest()}.zip"
    check(keys == [want], f"objects in the bucket: {keys}")
    location = lam.get_function(FunctionName="in-s3")["Code"]["Location"]
    with urllib.request.urlopen(location) as resp:
        check(resp.read() == code, "Code.Location serves the package from S3")
    check(lam.publish_version(FunctionName="in-s3")["Version"] == "1", "publish")


def suite_invoke(lam):
    node = make_zip(
        "exports.handler = async (event, context) => {\n"
        "  console.log('got', JSON.stringify(event));\n"
        "  if (event.fail) throw new Error('boom');\n"
        "  return {echo: event, version: context.functionVersion};\n"
        "};\n")
    create(lam, "echo-node", zip=node, Publish=True)
    r = lam.invoke(FunctionName="echo-node", Payload=b'{"hi":1}', LogType="Tail")
    check(r["StatusCode"] == 200 and "FunctionError" not in r, f"invoke: {r}")
    body = json.loads(r["Payload"].read())
    check(body == {"echo": {"hi": 1}, "version": "$LATEST"}, f"node result {body}")
    check(r["ExecutedVersion"] == "$LATEST", "executed version")
    log = base64.b64decode(r["LogResult"]).decode()
    check("START RequestId:" in log and "REPORT RequestId:" in log and "got" in log, log)
    r = lam.invoke(FunctionName="echo-node", Qualifier="1", Payload=b'{"fail":true}')
    check(r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled", f"unhandled: {r}")
    err = json.loads(r["Payload"].read())
    check(err["errorType"] == "Error" and err["errorMessage"] == "boom", f"error doc {err}")
    check(r["ExecutedVersion"] == "1", "qualified invoke runs version 1")
    lam.create_alias(FunctionName="echo-node", Name="live", FunctionVersion="1")
    r = lam.invoke(FunctionName="echo-node:live", Payload=b"{}")
    check(json.loads(r["Payload"].read())["version"] == "1", "alias invoke")
    r = lam.invoke(FunctionName="echo-node", InvocationType="DryRun")
    check(r["StatusCode"] == 204, "dry run")
    r = lam.invoke(FunctionName="echo-node", InvocationType="Event", Payload=b'{"a":1}')
    check(r["StatusCode"] == 202, "event")
    expect_error(lambda: lam.invoke(FunctionName="echo-node", Payload=b"not json"),
                 "InvalidRequestContentException", 400)
    expect_error(lambda: lam.invoke(FunctionName="echo-node", Payload=b"[" + b"1," * 3200000
                                    + b"1]"),
                 "RequestEntityTooLargeException", 413, "6291456")
    expect_error(lambda: lam.invoke(FunctionName="nope", Payload=b"{}"),
                 "ResourceNotFoundException", 404)

    py = make_zip("def handler(event, context):\n    return {'py': event['n'] * 2}\n",
                  name="app.py")
    create(lam, "echo-py", zip=py, Runtime="python3.12", Handler="app.handler")
    r = lam.invoke(FunctionName="echo-py", Payload=b'{"n": 21}')
    check(json.loads(r["Payload"].read()) == {"py": 42}, "python result")
    # A new $LATEST runs the new code.
    lam.update_function_code(FunctionName="echo-py", ZipFile=make_zip(
        "def handler(event, context):\n    return 'v2'\n", name="app.py"))
    r = lam.invoke(FunctionName="echo-py", Payload=b"{}")
    check(json.loads(r["Payload"].read()) == "v2", "updated code runs")


def main():
    if SUITE == "make-bucket":
        boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                     region_name=REGION).create_bucket(Bucket="ledge-test")
        return
    lam = client()
    if SUITE == "api":
        suite_functions(lam)
        suite_errors(lam)
        suite_raw_http()
        suite_list(lam)
        suite_aliases_tags(lam)
    elif SUITE == "concurrency":
        suite_concurrency(lam)
    elif SUITE == "invoke":
        suite_invoke(lam)
    elif SUITE == "s3":
        suite_s3(lam)
    elif SUITE == "create-busy":
        create(lam, "busy")
    elif SUITE == "publish-many":
        # Prints the versions this process got, for a caller comparing several processes.
        tag = f"{id(lam)}".encode()
        zips = [make_zip(f"exports.handler = async () => '{tag}-{i}';\n") for i in range(12)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            got = list(pool.map(lambda z: int(lam.update_function_code(
                FunctionName="busy", ZipFile=z, Publish=True)["Version"]), zips))
        print(json.dumps(got))
    else:
        raise SystemExit(f"unknown suite {SUITE}")
    print(f"boto3 suite {SUITE}: {CHECKS} checks passed")


if __name__ == "__main__":
    main()
