#!/usr/bin/env python3
"""Writes the trimmed AWS service models that ledge keeps in spec/.

The models are botocore's (pip install boto3): the exact request and response shapes of the
CloudFront and Lambda APIs. Documentation strings are dropped (they are most of the size);
everything else is kept as it is, in botocore's member order.

    python3 scripts/trim-service-model.py
"""
import gzip
import json
import os

import botocore

DATA = os.path.join(os.path.dirname(botocore.__file__), "data")
SPEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec")


def load(service, version):
    base = os.path.join(DATA, service, version, "service-2.json")
    if os.path.exists(base):
        with open(base) as f:
            return json.load(f)
    with gzip.open(base + ".gz") as f:
        return json.load(f)


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k != "documentation"}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


for service, version in [("cloudfront", "2020-05-31"), ("lambda", "2015-03-31")]:
    model = strip(load(service, version))
    model.pop("documentation", None)
    out = os.path.join(SPEC, f"{service}-{version}.json")
    with open(out, "w") as f:
        json.dump(model, f, indent=1, sort_keys=False)
        f.write("\n")
    print(out, os.path.getsize(out), "bytes, botocore", botocore.__version__)
