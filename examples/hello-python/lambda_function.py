"""A viewer-request function that answers without going to the origin."""


def lambda_handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    print("generating a response for", request["uri"])
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain"}]},
        "body": "hello from python at " + request["uri"],
    }
