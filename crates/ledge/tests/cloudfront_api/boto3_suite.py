"""Drives every CloudFront operation and error ledge supports through boto3.

Run by crates/ledge/tests/cloudfront_api.rs against a real `ledge control`:
    python3 boto3_suite.py ENDPOINT ACCESS_KEY SECRET_KEY [suite]
Suites: distributions, lambda, policies, invalidations, tags, raw (default: all).
Every parsed response is checked against botocore's CloudFront model, and every raw response
body must be XML in CloudFront's namespace. Exits non-zero on the first failed check.
"""

import copy
import io
import json
import os
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.exceptions
from botocore.config import Config

ENDPOINT, KEY, SECRET = sys.argv[1], sys.argv[2], sys.argv[3]
SUITE = sys.argv[4] if len(sys.argv) > 4 else "all"
ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/edge-role"
NS = "{http://cloudfront.amazonaws.com/doc/2020-05-31/}"
OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
CHECKS = 0
SEQ = [0]


def check(cond, what):
    global CHECKS
    CHECKS += 1
    if not cond:
        raise AssertionError(what)


def conforms(shape, value, where):
    """A parsed response value against botocore's shape: members, types and enums."""
    if value is None:
        return
    kind = shape.type_name
    if kind == "structure":
        check(isinstance(value, dict), f"{where}: expected an object")
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            check(key in shape.members, f"{where}: member {key!r} is not in the model")
            conforms(shape.members[key], item, f"{where}.{key}")
        for req in shape.required_members:
            check(req in value, f"{where}: required member {req!r} missing")
    elif kind == "list":
        check(isinstance(value, list), f"{where}: expected a list")
        for i, item in enumerate(value):
            conforms(shape.member, item, f"{where}[{i}]")
    elif kind in ("integer", "long"):
        check(isinstance(value, int), f"{where}: expected an integer, got {value!r}")
    elif kind == "string":
        check(isinstance(value, str), f"{where}: expected a string, got {value!r}")
        if shape.enum:
            check(value in shape.enum, f"{where}: {value!r} not in {shape.enum}")
    elif kind == "boolean":
        check(isinstance(value, bool), f"{where}: expected a boolean")


def check_raw(operation_model, response_dict, **_):
    """Every response body is XML in CloudFront's namespace (errors: the ErrorResponse)."""
    body = response_dict.get("body") or b""
    if not body:
        check(response_dict["status_code"] in (200, 204), f"empty body with "
              f"{response_dict['status_code']} for {operation_model.name}")
        return
    root = ET.fromstring(body)
    check(root.tag.startswith(NS), f"{operation_model.name}: root {root.tag} not namespaced")
    if response_dict["status_code"] >= 300:
        check(root.tag == NS + "ErrorResponse", f"error root {root.tag}")
        for part in ("Type", "Code", "Message"):
            check(root.find(f"{NS}Error/{NS}{part}") is not None, f"error lacks {part}: {body}")
        rid = root.find(f"{NS}RequestId")
        check(rid is not None and rid.text == response_dict["headers"].get("x-amzn-RequestId"),
              f"error RequestId differs from the header: {body}")


def check_parsed(http_response, parsed, model, **_):
    if http_response.status_code < 300 and model.output_shape is not None:
        conforms(model.output_shape, parsed, model.name)


def client():
    cf = boto3.client(
        "cloudfront", endpoint_url=ENDPOINT, region_name=REGION,
        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )
    cf.meta.events.register("before-parse.cloudfront.*", check_raw)
    cf.meta.events.register("after-call.cloudfront.*", check_parsed)
    return cf


def lambda_client():
    return boto3.client(
        "lambda", endpoint_url=ENDPOINT, region_name=REGION,
        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}),
    )


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


def ref():
    SEQ[0] += 1
    return f"ref-{os.getpid()}-{SEQ[0]}"


def minimal(**kw):
    config = {
        "CallerReference": ref(),
        "Origins": {"Quantity": 1, "Items": [{
            "Id": "app", "DomainName": "app.internal.test",
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "http-only"}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                                 "CachePolicyId": OPTIMIZED},
        "Comment": "suite",
        "Enabled": True,
    }
    config.update(kw)
    return config


def rich():
    """Every list, origins of both kinds, an origin group, legacy and policy behaviors."""
    return {
        "CallerReference": ref(),
        "Aliases": {"Quantity": 2, "Items": [f"www{SEQ[0]}.shop.test", f"*.img{SEQ[0]}.shop.test"]},
        "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 2, "Items": [
            {"Id": "app", "DomainName": "app.internal.test", "OriginPath": "/v2",
             "CustomHeaders": {"Quantity": 1, "Items": [
                 {"HeaderName": "X-From-Edge", "HeaderValue": "ledge"}]},
             "CustomOriginConfig": {"HTTPPort": 8081, "HTTPSPort": 8443,
                                    "OriginProtocolPolicy": "match-viewer",
                                    "OriginSslProtocols": {"Quantity": 2, "Items": ["TLSv1.1", "TLSv1.2"]},
                                    "OriginReadTimeout": 10, "OriginKeepaliveTimeout": 7},
             "ConnectionAttempts": 2, "ConnectionTimeout": 3,
             "OriginShield": {"Enabled": False}, "OriginAccessControlId": ""},
            {"Id": "bucket", "DomainName": "assets.s3.amazonaws.com",
             "S3OriginConfig": {"OriginAccessIdentity": ""}},
        ]},
        "OriginGroups": {"Quantity": 1, "Items": [{
            "Id": "failover",
            "FailoverCriteria": {"StatusCodes": {"Quantity": 2, "Items": [500, 503]}},
            "Members": {"Quantity": 2, "Items": [{"OriginId": "app"}, {"OriginId": "bucket"}]},
        }]},
        "DefaultCacheBehavior": {
            "TargetOriginId": "app",
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
            "TrustedKeyGroups": {"Enabled": False, "Quantity": 0},
            "ViewerProtocolPolicy": "redirect-to-https",
            "AllowedMethods": {"Quantity": 7, "Items": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
                               "CachedMethods": {"Quantity": 3, "Items": ["GET", "HEAD", "OPTIONS"]}},
            "SmoothStreaming": False, "Compress": True,
            "LambdaFunctionAssociations": {"Quantity": 0},
            "FunctionAssociations": {"Quantity": 0},
            "FieldLevelEncryptionId": "",
            "CachePolicyId": OPTIMIZED,
            "OriginRequestPolicyId": ALL_VIEWER,
        },
        "CacheBehaviors": {"Quantity": 2, "Items": [
            {"PathPattern": "/api/*", "TargetOriginId": "failover",
             "ViewerProtocolPolicy": "https-only",
             "ForwardedValues": {"QueryString": True,
                                 "Cookies": {"Forward": "whitelist",
                                             "WhitelistedNames": {"Quantity": 1, "Items": ["session"]}},
                                 "Headers": {"Quantity": 2, "Items": ["Accept", "Authorization"]},
                                 "QueryStringCacheKeys": {"Quantity": 1, "Items": ["page"]}},
             "MinTTL": 0, "DefaultTTL": 60, "MaxTTL": 600},
            {"PathPattern": "*.jpg", "TargetOriginId": "bucket", "ViewerProtocolPolicy": "allow-all",
             "CachePolicyId": DISABLED},
        ]},
        "CustomErrorResponses": {"Quantity": 2, "Items": [
            {"ErrorCode": 404, "ResponsePagePath": "/404.html", "ResponseCode": "200",
             "ErrorCachingMinTTL": 30},
            {"ErrorCode": 503, "ErrorCachingMinTTL": 0},
        ]},
        "Comment": "rich config",
        "Logging": {"Enabled": False, "IncludeCookies": False, "Bucket": "", "Prefix": ""},
        "PriceClass": "PriceClass_100",
        "Enabled": True,
        "ViewerCertificate": {"CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1.2_2021"},
        "Restrictions": {"GeoRestriction": {"RestrictionType": "whitelist", "Quantity": 2, "Items": ["DE", "FR"]}},
        "WebACLId": "",
        "HttpVersion": "http2and3",
        "IsIPV6Enabled": True,
    }


def same(sent, got, where="config"):
    """Everything sent comes back equal (the server may add defaults, never change)."""
    if isinstance(sent, dict):
        check(isinstance(got, dict), f"{where}: expected an object, got {got!r}")
        for k, v in sent.items():
            check(k in got, f"{where}.{k} missing from the response")
            same(v, got[k], f"{where}.{k}")
    elif isinstance(sent, list):
        check(isinstance(got, list) and len(got) == len(sent), f"{where}: {got!r} != {sent!r}")
        for i, (a, b) in enumerate(zip(sent, got)):
            same(a, b, f"{where}[{i}]")
    else:
        check(sent == got, f"{where}: sent {sent!r}, got {got!r}")


def create(cf, config):
    return cf.create_distribution(DistributionConfig=config)


def disable_and_delete(cf, dist_id):
    got = cf.get_distribution_config(Id=dist_id)
    config = got["DistributionConfig"]
    config["Enabled"] = False
    config["Aliases"] = {"Quantity": 0}
    up = cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)
    cf.delete_distribution(Id=dist_id, IfMatch=up["ETag"])


def suite_distributions(cf):
    sent = rich()
    out = create(cf, sent)
    d = out["Distribution"]
    dist_id = d["Id"]
    check(len(dist_id) == 14 and dist_id[0] == "E" and dist_id.isalnum() and dist_id.isupper(), dist_id)
    check(d["ARN"] == f"arn:aws:cloudfront::{ACCOUNT}:distribution/{dist_id}", d["ARN"])
    check(d["Status"] == "InProgress", d["Status"])
    check(d["DomainName"].endswith(".ledge.localhost") and d["DomainName"].startswith("d"), d["DomainName"])
    check(d["InProgressInvalidationBatches"] == 0, d)
    check(out["Location"].endswith(f"/2020-05-31/distribution/{dist_id}"), out["Location"])
    check(out["ETag"], "create without ETag")
    same(sent, d["DistributionConfig"])
    got = cf.get_distribution_config(Id=dist_id)
    same(sent, got["DistributionConfig"])
    check(got["ETag"] == out["ETag"], "GetDistributionConfig ETag differs from Create's")
    full = cf.get_distribution(Id=dist_id)
    check(full["ETag"] == out["ETag"], "GetDistribution ETag differs")
    check(full["Distribution"]["Status"] in ("InProgress", "Deployed"), full["Distribution"]["Status"])
    # Defaults are filled in for what was omitted.
    m = create(cf, minimal())
    mc = m["Distribution"]["DistributionConfig"]
    check(mc["PriceClass"] == "PriceClass_All" and mc["HttpVersion"] == "http2", mc)
    check(mc["DefaultCacheBehavior"]["AllowedMethods"]["Quantity"] == 2, mc)
    check(mc["Origins"]["Items"][0]["ConnectionAttempts"] == 3, mc)
    check(mc["ViewerCertificate"]["CloudFrontDefaultCertificate"] is True, mc)

    # Update: full replacement, new ETag, InProgress; stale and missing If-Match refused.
    config = got["DistributionConfig"]
    config["Comment"] = "updated"
    config["DefaultRootObject"] = "home.html"
    up = cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)
    check(up["ETag"] != got["ETag"], "update kept the ETag")
    check(up["Distribution"]["Status"] == "InProgress", "update not InProgress")
    check(up["Distribution"]["DistributionConfig"]["Comment"] == "updated", "update lost")
    expect_error(lambda: cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config),
                 "PreconditionFailed", 412)
    expect_error(lambda: cf.update_distribution(Id=dist_id, DistributionConfig=config),
                 "InvalidIfMatchVersion", 400)
    again = cf.update_distribution(Id=dist_id, IfMatch=up["ETag"], DistributionConfig=config)
    check(again["ETag"] != up["ETag"], "an identical update still yields a new ETag")
    etag = again["ETag"]
    changed = copy.deepcopy(config)
    changed["CallerReference"] = "another"
    expect_error(lambda: cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=changed),
                 "IllegalUpdate", 400)
    # CallerReference and CNAME uniqueness.
    expect_error(lambda: create(cf, dict(sent)), "DistributionAlreadyExists", 409)
    dup = minimal(Aliases={"Quantity": 1, "Items": [sent["Aliases"]["Items"][0]]})
    expect_error(lambda: create(cf, dup), "CNAMEAlreadyExists", 409)
    overlap = minimal(Aliases={"Quantity": 1, "Items": [f"x.img{sent['Aliases']['Items'][1][6:]}"]})
    create(cf, overlap)  # a name under another's wildcard is allowed
    # Unknown ids.
    for fn in (lambda: cf.get_distribution(Id="ENOSUCHDIST123"),
               lambda: cf.get_distribution_config(Id="ENOSUCHDIST123"),
               lambda: cf.update_distribution(Id="ENOSUCHDIST123", IfMatch="X", DistributionConfig=config),
               lambda: cf.delete_distribution(Id="ENOSUCHDIST123", IfMatch="X")):
        expect_error(fn, "NoSuchDistribution", 404)
    # Delete: enabled is refused; disabled and deployed goes.
    expect_error(lambda: cf.delete_distribution(Id=dist_id, IfMatch=etag), "DistributionNotDisabled", 409)
    expect_error(lambda: cf.delete_distribution(Id=dist_id), "InvalidIfMatchVersion", 400)
    config["Enabled"] = False
    off = cf.update_distribution(Id=dist_id, IfMatch=etag, DistributionConfig=config)
    expect_error(lambda: cf.delete_distribution(Id=dist_id, IfMatch=etag), "PreconditionFailed", 412)
    cf.get_waiter("distribution_deployed").wait(Id=dist_id, WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    cf.delete_distribution(Id=dist_id, IfMatch=off["ETag"])
    expect_error(lambda: cf.get_distribution(Id=dist_id), "NoSuchDistribution", 404)
    # Its aliases are free again.
    reuse = create(cf, minimal(Aliases={"Quantity": 1, "Items": [sent["Aliases"]["Items"][0]]}))

    # List paging.
    everything = cf.list_distributions()["DistributionList"]
    total = everything["Quantity"]
    check(total >= 3 and not everything["IsTruncated"], everything)
    ids = [s["Id"] for s in everything["Items"]]
    check(reuse["Distribution"]["Id"] in ids, "new distribution not listed")
    page = cf.list_distributions(MaxItems="2")["DistributionList"]
    check(page["IsTruncated"] and page["Quantity"] == 2 and page["NextMarker"] == ids[1], page)
    rest = cf.list_distributions(Marker=page["NextMarker"], MaxItems="100")["DistributionList"]
    check([s["Id"] for s in rest.get("Items", [])] == ids[2:], "second page")
    expect_error(lambda: cf.list_distributions(MaxItems="many"), "InvalidArgument", 400)
    paginated = [s["Id"] for p in cf.get_paginator("list_distributions").paginate(PaginationConfig={"PageSize": 1})
                 for s in p["DistributionList"].get("Items", [])]
    check(paginated == ids, f"paginator {paginated} != {ids}")


def validation_cases():
    """(config change, code, status): every rule of apis.md §3.7 that needs no function."""
    def origin(**kw):
        o = {"Id": "app", "DomainName": "app.internal.test",
             "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "http-only"}}
        for k, v in kw.items():
            if k in ("HTTPPort", "OriginReadTimeout", "OriginKeepaliveTimeout"):
                o["CustomOriginConfig"][k] = v
            else:
                o[k] = v
        return {"Quantity": 1, "Items": [o]}

    def behavior(**kw):
        b = {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all", "CachePolicyId": OPTIMIZED}
        b.update(kw)
        return b

    legacy = {"QueryString": False, "Cookies": {"Forward": "none"}}
    many = lambda n, f: {"Quantity": n, "Items": [f(i) for i in range(n)]}  # noqa: E731
    return [
        ({"Aliases": {"Quantity": 1, "Items": ["Upper.Case.test"]}}, "InvalidArgument", 400),
        ({"Aliases": many(101, lambda i: f"a{i}.test")}, "TooManyDistributionCNAMEs", 400),
        ({"DefaultRootObject": "/index.html"}, "InvalidDefaultRootObject", 400),
        ({"Origins": origin(DomainName="not a host")}, "InvalidArgument", 400),
        ({"Origins": origin(OriginPath="v2/")}, "InvalidArgument", 400),
        ({"Origins": origin(HTTPPort=81)}, "InvalidArgument", 400),
        ({"Origins": origin(OriginReadTimeout=61)}, "InvalidOriginReadTimeout", 400),
        ({"Origins": origin(OriginKeepaliveTimeout=0)}, "InvalidOriginKeepaliveTimeout", 400),
        ({"Origins": origin(ConnectionAttempts=4)}, "InvalidArgument", 400),
        ({"Origins": origin(ConnectionTimeout=11)}, "InvalidArgument", 400),
        ({"Origins": origin(CustomHeaders=many(11, lambda i: {"HeaderName": f"X-{i}", "HeaderValue": "v"}))},
         "TooManyOriginCustomHeaders", 400),
        ({"Origins": many(26, lambda i: {"Id": f"o{i}", "DomainName": "a.test",
                                         "S3OriginConfig": {"OriginAccessIdentity": ""}})},
         "TooManyOrigins", 400),
        ({"Origins": {"Quantity": 2, "Items": origin()["Items"] * 2}}, "InvalidArgument", 400),
        ({"DefaultCacheBehavior": behavior(TargetOriginId="nowhere")}, "NoSuchOrigin", 404),
        ({"DefaultCacheBehavior": behavior(ForwardedValues=legacy)}, "InvalidArgument", 400),
        ({"DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all"}},
         "InvalidArgument", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, OriginRequestPolicyId=ALL_VIEWER,
                                           ForwardedValues=legacy)}, "InvalidArgument", 400),
        ({"DefaultCacheBehavior": behavior(MinTTL=5)}, "InvalidArgument", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId="00000000-0000-0000-0000-000000000000")},
         "NoSuchCachePolicy", 404),
        ({"DefaultCacheBehavior": behavior(OriginRequestPolicyId="00000000-0000-0000-0000-000000000000")},
         "NoSuchOriginRequestPolicy", 404),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, ForwardedValues=legacy, MinTTL=100, DefaultTTL=10)},
         "InvalidTTLOrder", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, MinTTL=5, ForwardedValues=dict(
            legacy, Headers={"Quantity": 1, "Items": ["*"]}))}, "InvalidArgument", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, ForwardedValues=dict(
            legacy, Headers=many(11, lambda i: f"X-H{i}")))}, "TooManyHeadersInForwardedValues", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, ForwardedValues=dict(
            legacy, Cookies={"Forward": "whitelist", "WhitelistedNames": many(11, lambda i: f"c{i}")}))},
         "TooManyCookieNamesInWhiteList", 400),
        ({"DefaultCacheBehavior": behavior(CachePolicyId=None, ForwardedValues=dict(
            legacy, QueryStringCacheKeys=many(11, lambda i: f"q{i}")))}, "TooManyQueryStringParameters", 400),
        ({"DefaultCacheBehavior": behavior(AllowedMethods={"Quantity": 2, "Items": ["GET", "POST"]})},
         "InvalidArgument", 400),
        ({"CacheBehaviors": many(26, lambda i: dict(behavior(), PathPattern=f"/p{i}/*"))},
         "TooManyCacheBehaviors", 400),
        ({"CacheBehaviors": {"Quantity": 1, "Items": [dict(behavior(), PathPattern="/bad path")]}},
         "InvalidArgument", 400),
        ({"CustomErrorResponses": {"Quantity": 1, "Items": [{"ErrorCode": 418}]}}, "InvalidErrorCode", 400),
        ({"CustomErrorResponses": {"Quantity": 1, "Items": [
            {"ErrorCode": 404, "ResponsePagePath": "/e.html", "ResponseCode": "302"}]}}, "InvalidResponseCode", 400),
        ({"CustomErrorResponses": {"Quantity": 1, "Items": [
            {"ErrorCode": 404, "ResponsePagePath": "e.html", "ResponseCode": "200"}]}}, "InvalidRelativePath", 400),
        ({"Comment": "x" * 129}, "InvalidArgument", 400),
        ({"ViewerCertificate": {"CloudFrontDefaultCertificate": True,
                                "ACMCertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/x"}},
         "InvalidViewerCertificate", 400),
        ({"DefaultCacheBehavior": behavior(FunctionAssociations={"Quantity": 1, "Items": [
            {"FunctionARN": "arn:aws:cloudfront::000000000000:function/f", "EventType": "origin-request"}]})},
         "InvalidFunctionAssociation", 400),
        ({"Staging": True}, "InvalidArgument", 400),
    ]


def apply_case(config, change):
    config = copy.deepcopy(config)
    for k, v in change.items():
        config[k] = v
    b = config["DefaultCacheBehavior"]
    for k in [k for k, v in b.items() if v is None]:
        del b[k]
    return config


def suite_validation(cf):
    base = create(cf, minimal())
    dist_id = base["Distribution"]["Id"]
    before = cf.get_distribution_config(Id=dist_id)
    for change, code, status in validation_cases():
        expect_error(lambda: create(cf, apply_case(minimal(), change)), code, status)
        updated = apply_case(before["DistributionConfig"], change)
        expect_error(lambda: cf.update_distribution(Id=dist_id, IfMatch=before["ETag"],
                                                    DistributionConfig=updated), code, status)
    after = cf.get_distribution_config(Id=dist_id)
    check(after == before | {"ResponseMetadata": after["ResponseMetadata"]}, "failed updates changed the store")


def make_zip(size=0):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.js", "exports.handler = async (e) => e.Records[0].cf.request;\n")
        if size:
            z.writestr(zipfile.ZipInfo("pad.bin"), os.urandom(size))
    return buf.getvalue()


def suite_lambda(cf):
    lam = lambda_client()

    def function(name, **kw):
        args = dict(FunctionName=name, Runtime="nodejs20.x", Role=ROLE, Handler="index.handler",
                    Code={"ZipFile": kw.pop("zip", make_zip())}, Timeout=5, MemorySize=128)
        args.update(kw)
        lam.create_function(**args)
        return lam.publish_version(FunctionName=name)["FunctionArn"]

    ok = function("edge-ok")
    lam.create_alias(FunctionName="edge-ok", Name="live", FunctionVersion="1")
    env = function("edge-env", Environment={"Variables": {"STAGE": "1"}})
    slow = function("edge-slow", Timeout=10)
    big_mem = function("edge-mem", MemorySize=256)
    big_code = function("edge-big", zip=make_zip(1_100_000))
    arm = function("edge-arm", Architectures=["arm64"])
    base = ok.rsplit(":", 1)[0]

    def assoc(*items):
        return minimal(DefaultCacheBehavior={
            "TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all", "CachePolicyId": OPTIMIZED,
            "LambdaFunctionAssociations": {"Quantity": len(items), "Items": [
                {"LambdaFunctionARN": a, "EventType": e, "IncludeBody": b} for a, e, b in items]}})

    cases = [
        ((base + ":$LATEST", "viewer-request", False), "must reference a specific function version"),
        ((base + ":live", "viewer-request", False), "must reference a specific function version"),
        ((base, "viewer-request", False), "must reference a specific function version"),
        ((ok.replace("us-east-1", "eu-west-1"), "viewer-request", False), "must be in region 'us-east-1'"),
        ((base + ":7", "viewer-request", False), "does not exist"),
        ((env, "origin-request", False), "cannot have environment variables"),
        ((slow, "viewer-request", False), "function timeout is larger"),
        ((big_mem, "viewer-response", False), "memory size is larger"),
        ((big_code, "viewer-request", False), "code size is larger"),
        ((ok, "origin-response", True), "IncludeBody"),
        ((arm, "origin-request", False), "x86_64"),
    ]
    for item, message in cases:
        expect_error(lambda: create(cf, assoc(item)), "InvalidLambdaFunctionAssociation", 400, message)
    expect_error(lambda: create(cf, assoc((ok, "viewer-request", False), (ok, "viewer-request", False))),
                 "TooManyLambdaFunctionAssociations", 400, "must be unique in the cache behavior")
    mixed = assoc((ok, "viewer-response", False))
    mixed["DefaultCacheBehavior"]["FunctionAssociations"] = {"Quantity": 1, "Items": [
        {"FunctionARN": f"arn:aws:cloudfront::{ACCOUNT}:function/f", "EventType": "viewer-request"}]}
    expect_error(lambda: create(cf, mixed), "InvalidFunctionAssociation", 400)
    # Origin events allow what viewer events refuse.
    d = create(cf, assoc((slow, "origin-request", True), (big_mem, "origin-response", False),
                         (ok, "viewer-request", True)))
    dist_id = d["Distribution"]["Id"]
    got = d["Distribution"]["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]
    check(got["Quantity"] == 3 and got["Items"][0]["LambdaFunctionARN"] == slow, got)
    # Attached versions cannot be deleted; unattached ones can.
    for name, qualifier in (("edge-ok", None), ("edge-slow", "1"), ("edge-mem", "1")):
        args = {"FunctionName": name} | ({"Qualifier": qualifier} if qualifier else {})
        try:
            lam.delete_function(**args)
            raise AssertionError(f"deleted attached {name}:{qualifier}")
        except lam.exceptions.InvalidParameterValueException as e:
            check("because it is a replicated function" in str(e), str(e))
    lam.delete_function(FunctionName="edge-env")
    disable_and_delete(cf, dist_id)
    lam.delete_alias(FunctionName="edge-ok", Name="live")
    lam.delete_function(FunctionName="edge-ok", Qualifier="1")
    lam.delete_function(FunctionName="edge-slow")


def suite_policies(cf):
    managed = cf.list_cache_policies(Type="managed")["CachePolicyList"]
    names = {s["CachePolicy"]["CachePolicyConfig"]["Name"]: s["CachePolicy"]["Id"] for s in managed["Items"]}
    check(names.get("CachingOptimized") == OPTIMIZED and names.get("CachingDisabled") == DISABLED, names)
    check(names.get("CachingOptimizedForUncompressedObjects") == "b2884449-e4de-46a7-ac36-70bc7f1ddd6d", names)
    check(all(s["Type"] == "managed" for s in managed["Items"]), managed)
    opt = cf.get_cache_policy(Id=OPTIMIZED)
    c = opt["CachePolicy"]["CachePolicyConfig"]
    check((c["MinTTL"], c["DefaultTTL"], c["MaxTTL"]) == (1, 86400, 31536000), c)
    expect_error(lambda: cf.update_cache_policy(Id=OPTIMIZED, IfMatch=opt["ETag"], CachePolicyConfig=c),
                 "IllegalUpdate", 400)
    expect_error(lambda: cf.delete_cache_policy(Id=OPTIMIZED, IfMatch=opt["ETag"]), "IllegalDelete", 400)
    orps = cf.list_origin_request_policies(Type="managed")["OriginRequestPolicyList"]
    check(any(s["OriginRequestPolicy"]["Id"] == ALL_VIEWER for s in orps["Items"]), orps)
    cf.get_origin_request_policy(Id=ALL_VIEWER)

    config = {
        "Name": f"custom-{os.getpid()}", "Comment": "mine", "MinTTL": 5, "DefaultTTL": 60, "MaxTTL": 3600,
        "ParametersInCacheKeyAndForwardedToOrigin": {
            "EnableAcceptEncodingGzip": True, "EnableAcceptEncodingBrotli": False,
            "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["Accept"]}},
            "CookiesConfig": {"CookieBehavior": "none"},
            "QueryStringsConfig": {"QueryStringBehavior": "all"}}}
    made = cf.create_cache_policy(CachePolicyConfig=config)
    pid = made["CachePolicy"]["Id"]
    same(config, made["CachePolicy"]["CachePolicyConfig"])
    check(made["Location"].endswith(f"/2020-05-31/cache-policy/{pid}"), made["Location"])
    expect_error(lambda: cf.create_cache_policy(CachePolicyConfig=config), "CachePolicyAlreadyExists", 409)
    got = cf.get_cache_policy_config(Id=pid)
    same(config, got["CachePolicyConfig"])
    check(got["ETag"] == made["ETag"], "ETag")
    customs = cf.list_cache_policies(Type="custom")["CachePolicyList"]
    check([s["CachePolicy"]["Id"] for s in customs["Items"]] == [pid], customs)
    defaulted = cf.create_cache_policy(CachePolicyConfig={
        "Name": f"defaults-{os.getpid()}", "MinTTL": 100000,
        "ParametersInCacheKeyAndForwardedToOrigin": config["ParametersInCacheKeyAndForwardedToOrigin"]})
    dc = defaulted["CachePolicy"]["CachePolicyConfig"]
    check(dc["DefaultTTL"] == 100000 and dc["MaxTTL"] == 31536000, dc)
    bad_ttl = dict(config, Name="bad-ttl", MinTTL=100, DefaultTTL=10)
    expect_error(lambda: cf.create_cache_policy(CachePolicyConfig=bad_ttl), "InvalidArgument", 400)
    many = copy.deepcopy(config)
    many["Name"] = "many"
    many["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] = {
        "Quantity": 11, "Items": [f"X-{i}" for i in range(11)]}
    expect_error(lambda: cf.create_cache_policy(CachePolicyConfig=many), "TooManyHeadersInCachePolicy", 400)
    config["Comment"] = "changed"
    expect_error(lambda: cf.update_cache_policy(Id=pid, IfMatch="stale", CachePolicyConfig=config),
                 "PreconditionFailed", 412)
    expect_error(lambda: cf.update_cache_policy(Id=pid, CachePolicyConfig=config), "InvalidIfMatchVersion", 400)
    up = cf.update_cache_policy(Id=pid, IfMatch=made["ETag"], CachePolicyConfig=config)
    check(up["CachePolicy"]["CachePolicyConfig"]["Comment"] == "changed", up)
    expect_error(lambda: cf.get_cache_policy(Id="00000000-0000-0000-0000-000000000000"), "NoSuchCachePolicy", 404)

    orp_config = {"Name": f"orp-{os.getpid()}", "Comment": "",
                  "HeadersConfig": {"HeaderBehavior": "whitelist", "Headers": {"Quantity": 1, "Items": ["X-Id"]}},
                  "CookiesConfig": {"CookieBehavior": "all"},
                  "QueryStringsConfig": {"QueryStringBehavior": "none"}}
    orp = cf.create_origin_request_policy(OriginRequestPolicyConfig=orp_config)
    oid = orp["OriginRequestPolicy"]["Id"]
    same(orp_config, orp["OriginRequestPolicy"]["OriginRequestPolicyConfig"])
    auth = copy.deepcopy(orp_config)
    auth["Name"] = "auth"
    auth["HeadersConfig"]["Headers"] = {"Quantity": 1, "Items": ["Authorization"]}
    expect_error(lambda: cf.create_origin_request_policy(OriginRequestPolicyConfig=auth), "InvalidArgument", 400,
                 "Authorization that is not allowed")
    expect_error(lambda: cf.create_origin_request_policy(OriginRequestPolicyConfig=orp_config),
                 "OriginRequestPolicyAlreadyExists", 409)
    expect_error(lambda: cf.delete_origin_request_policy(Id=ALL_VIEWER, IfMatch="x"), "IllegalDelete", 400)

    # In use: refused; after the distribution goes, allowed.
    d = create(cf, minimal(DefaultCacheBehavior={"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
                                                 "CachePolicyId": pid, "OriginRequestPolicyId": oid}))
    etag = cf.get_cache_policy(Id=pid)["ETag"]
    expect_error(lambda: cf.delete_cache_policy(Id=pid, IfMatch=etag), "CachePolicyInUse", 409)
    oetag = cf.get_origin_request_policy(Id=oid)["ETag"]
    expect_error(lambda: cf.delete_origin_request_policy(Id=oid, IfMatch=oetag), "OriginRequestPolicyInUse", 409)
    disable_and_delete(cf, d["Distribution"]["Id"])
    expect_error(lambda: cf.delete_cache_policy(Id=pid, IfMatch="stale"), "PreconditionFailed", 412)
    cf.delete_cache_policy(Id=pid, IfMatch=etag)
    cf.delete_origin_request_policy(Id=oid, IfMatch=oetag)
    expect_error(lambda: cf.get_cache_policy_config(Id=pid), "NoSuchCachePolicy", 404)
    expect_error(lambda: cf.get_origin_request_policy(Id=oid), "NoSuchOriginRequestPolicy", 404)


def suite_invalidations(cf):
    dist_id = create(cf, minimal())["Distribution"]["Id"]
    batch = {"Paths": {"Quantity": 2, "Items": ["/index.html", "/img/*"]}, "CallerReference": "deploy-1"}
    inv = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=batch)
    i = inv["Invalidation"]
    check(i["Id"].startswith("I") and i["Status"] == "InProgress", i)
    check(inv["Location"].endswith(f"/distribution/{dist_id}/invalidation/{i['Id']}"), inv["Location"])
    same(batch, i["InvalidationBatch"])
    again = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=batch)
    check(again["Invalidation"]["Id"] == i["Id"], "same CallerReference and paths: same invalidation")
    other = dict(batch, Paths={"Quantity": 1, "Items": ["/other"]})
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=other),
                 "InvalidationBatchAlreadyExists", 409)
    got = cf.get_invalidation(DistributionId=dist_id, Id=i["Id"])["Invalidation"]
    check(got["Status"] in ("InProgress", "Completed"), got)
    cf.get_waiter("invalidation_completed").wait(DistributionId=dist_id, Id=i["Id"],
                                                 WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    second = cf.create_invalidation(DistributionId=dist_id, InvalidationBatch={
        "Paths": {"Quantity": 1, "Items": ["/a"]}, "CallerReference": "deploy-2"})["Invalidation"]
    listed = cf.list_invalidations(DistributionId=dist_id)["InvalidationList"]
    check([s["Id"] for s in listed["Items"]] == [second["Id"], i["Id"]], f"newest first: {listed}")
    page = cf.list_invalidations(DistributionId=dist_id, MaxItems="1")["InvalidationList"]
    check(page["IsTruncated"] and page["NextMarker"] == second["Id"], page)
    rest = cf.list_invalidations(DistributionId=dist_id, Marker=page["NextMarker"])["InvalidationList"]
    check([s["Id"] for s in rest["Items"]] == [i["Id"]], rest)
    expect_error(lambda: cf.get_invalidation(DistributionId=dist_id, Id="INOSUCHINV0001"), "NoSuchInvalidation", 404)
    expect_error(lambda: cf.create_invalidation(DistributionId="ENOSUCHDIST123", InvalidationBatch=batch),
                 "NoSuchDistribution", 404)
    wild = {"Paths": {"Quantity": 16, "Items": [f"/w{n}/*" for n in range(16)]}, "CallerReference": "wild"}
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=wild),
                 "TooManyInvalidationsInProgress", 400)
    huge = {"Paths": {"Quantity": 3001, "Items": [f"/f{n}" for n in range(3001)]}, "CallerReference": "huge"}
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=huge),
                 "BatchTooLarge", 413)
    ctrl = {"Paths": {"Quantity": 1, "Items": ["/a\x01b"]}, "CallerReference": "ctrl"}
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=ctrl),
                 "InvalidArgument", 400)
    empty = {"Paths": {"Quantity": 0}, "CallerReference": "empty"}
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=empty),
                 "InvalidArgument", 400)
    long_path = {"Paths": {"Quantity": 1, "Items": ["/" + "a" * 4000]}, "CallerReference": "long"}
    expect_error(lambda: cf.create_invalidation(DistributionId=dist_id, InvalidationBatch=long_path),
                 "InvalidArgument", 400)


def suite_tags(cf):
    made = cf.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": minimal(),
        "Tags": {"Items": [{"Key": "team", "Value": "edge"}, {"Key": "env", "Value": "test"}]}})
    arn = made["Distribution"]["ARN"]
    check(made["Location"] and made["ETag"], made)
    tags = cf.list_tags_for_resource(Resource=arn)["Tags"]["Items"]
    check(sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "edge")], tags)
    cf.tag_resource(Resource=arn, Tags={"Items": [{"Key": "team", "Value": "cdn"}, {"Key": "x", "Value": ""}]})
    cf.untag_resource(Resource=arn, TagKeys={"Items": ["env"]})
    tags = cf.list_tags_for_resource(Resource=arn)["Tags"]["Items"]
    check(sorted((t["Key"], t["Value"]) for t in tags) == [("team", "cdn"), ("x", "")], tags)
    missing = f"arn:aws:cloudfront::{ACCOUNT}:distribution/ENOSUCHDIST123"
    expect_error(lambda: cf.list_tags_for_resource(Resource=missing), "NoSuchResource", 404)
    expect_error(lambda: cf.tag_resource(Resource=arn, Tags={"Items": [{"Key": "aws:x", "Value": "1"}]}),
                 "InvalidTagging", 400)


def suite_raw(cf):
    """Bodies and signatures a well-behaved SDK never sends; the store stays untouched."""
    creds = botocore.credentials.Credentials(KEY, SECRET)
    made = create(cf, minimal())
    dist_id, etag = made["Distribution"]["Id"], made["ETag"]
    before = cf.get_distribution_config(Id=dist_id)["DistributionConfig"]

    def send(method, path, body=b"", headers=None, signer_creds=creds):
        req = botocore.awsrequest.AWSRequest(method=method, url=ENDPOINT + path, data=body,
                                             headers=headers or {})
        botocore.auth.SigV4Auth(signer_creds, "cloudfront", REGION).add_auth(req)
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body or None, method=method,
                                   headers=dict(prepared.headers))
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def expect(status, code, method, path, body=b"", **kw):
        got, headers, raw = send(method, path, body, **kw)
        root = ET.fromstring(raw)
        check(root.tag == NS + "ErrorResponse", f"{code}: not an ErrorResponse: {raw[:300]}")
        got_code = root.find(f"{NS}Error/{NS}Code").text
        check((got, got_code) == (status, code), f"expected {status} {code}, got {got} {got_code}: {raw[:300]}")
        check(root.find(f"{NS}Error/{NS}Type").text == ("Sender" if status < 500 else "Receiver"), raw)
        check(root.find(f"{NS}RequestId").text == headers.get("x-amzn-requestid"), "request ids differ")
        check(headers.get("content-type", "").startswith("text/xml"), headers)

    def config_xml(inner):
        return (f'<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">{inner}'
                '</DistributionConfig>').encode()

    good = (f"<CallerReference>raw-{os.getpid()}</CallerReference>"
            "<Origins><Quantity>1</Quantity><Items><Origin><Id>app</Id><DomainName>a.test</DomainName>"
            "<CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort>"
            "<OriginProtocolPolicy>http-only</OriginProtocolPolicy></CustomOriginConfig></Origin></Items></Origins>"
            "<DefaultCacheBehavior><TargetOriginId>app</TargetOriginId><ViewerProtocolPolicy>allow-all"
            f"</ViewerProtocolPolicy><CachePolicyId>{OPTIMIZED}</CachePolicyId></DefaultCacheBehavior>"
            "<Comment></Comment><Enabled>true</Enabled>")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
              b'<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
              b'<CallerReference>&lol3;</CallerReference></DistributionConfig>')
    bad_bodies = [
        (400, "MalformedInput", b"<DistributionConfig><CallerReference>x</Call"),
        (400, "MalformedInput", laughs),
        (400, "MalformedXML", good.encode().join([b'<DistributionConfig xmlns="urn:wrong">', b"</DistributionConfig>"])),
        (400, "MalformedXML", config_xml(good.replace("<Enabled>true</Enabled>", ""))),
        (400, "MalformedXML", config_xml(good.replace("<Enabled>true</Enabled>", "<Enabled>yes</Enabled>"))),
        (400, "MalformedXML", config_xml(good + "<Unknown>1</Unknown>")),
        (400, "InconsistentQuantities", config_xml(good.replace("<Quantity>1</Quantity>", "<Quantity>2</Quantity>"))),
        (400, "MissingBody", b""),
        (413, "RequestEntityTooLarge", config_xml(good + "<!--" + "x" * (1024 * 1024) + "-->")),
    ]
    for status, code, body in bad_bodies:
        expect(status, code, "POST", "/2020-05-31/distribution", body)
        expect(status, code, "PUT", f"/2020-05-31/distribution/{dist_id}/config", body,
               headers={"If-Match": etag})
    expect(400, "MalformedInput", "POST", "/2020-05-31/cache-policy", laughs)
    expect(400, "MalformedXML", "POST", f"/2020-05-31/distribution/{dist_id}/invalidation", config_xml(good))
    expect(404, "NoSuchDistribution", "GET", "/2020-05-31/distribution/ENOSUCHDIST123")
    expect(404, "NotFound", "GET", "/2020-05-31/no-such-thing")
    expect(403, "SignatureDoesNotMatch", "GET", "/2020-05-31/distribution",
           signer_creds=botocore.credentials.Credentials(KEY, "wrong"))
    expect(403, "InvalidClientTokenId", "GET", "/2020-05-31/distribution",
           signer_creds=botocore.credentials.Credentials("AKIDUNKNOWN", SECRET))
    after = cf.get_distribution_config(Id=dist_id)
    check(after["DistributionConfig"] == before and after["ETag"] == etag, "bad input changed the distribution")
    listed = [s["Id"] for s in cf.list_distributions()["DistributionList"].get("Items", [])]
    check(listed.count(dist_id) == 1, "bad creates left distributions behind")
    # A good raw body is accepted as botocore would send it.
    status, headers, raw = send("POST", "/2020-05-31/distribution", config_xml(good))
    check(status == 201 and headers.get("etag") and raw.startswith(b"<?xml"), f"raw create {status} {raw[:200]}")


SUITES = {
    "distributions": suite_distributions,
    "validation": suite_validation,
    "lambda": suite_lambda,
    "policies": suite_policies,
    "invalidations": suite_invalidations,
    "tags": suite_tags,
    "raw": suite_raw,
}

if __name__ == "__main__":
    cf = client()
    names = list(SUITES) if SUITE == "all" else SUITE.split(",")
    for name in names:
        SUITES[name](cf)
        print(f"{name}: ok")
    print(f"{CHECKS} checks passed")
