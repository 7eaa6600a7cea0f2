use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::store::VersionConfig;

fn version(runtime: &str, timeout: i64, memory: i64, code_size: i64) -> VersionRow {
    VersionRow {
        function_name: "f".into(),
        version: 1,
        revision_id: "r".into(),
        code_hex: "00".into(),
        code_size,
        config: VersionConfig {
            runtime: runtime.into(),
            role: "arn:aws:iam::000000000000:role/r".into(),
            handler: "index.handler".into(),
            description: String::new(),
            timeout,
            memory_size: memory,
            environment: BTreeMap::new(),
            architectures: vec!["x86_64".into()],
            code_sha256: String::new(),
            last_modified: String::new(),
        },
    }
}

fn association(event: &str) -> Association {
    Association {
        arn: "arn:aws:lambda:us-east-1:000000000000:function:f:1".into(),
        function: "f".into(),
        version: 1,
        event_type: event.into(),
    }
}

fn code(r: Result<(), CfError>) -> Option<&'static str> {
    r.err().map(|e| e.code())
}

#[test]
fn lambda_version_limits_depend_on_the_event() {
    let ok = version("nodejs20.x", 5, 128, 1000);
    assert_eq!(
        code(lambda_version(&association("viewer-request"), &ok)),
        None
    );
    let slow = version("nodejs20.x", 30, 1024, 40 << 20);
    assert_eq!(
        code(lambda_version(&association("origin-request"), &slow)),
        None
    );
    for event in ["viewer-request", "viewer-response"] {
        assert_eq!(
            code(lambda_version(&association(event), &slow)),
            Some("InvalidLambdaFunctionAssociation")
        );
    }
    let too_slow = version("nodejs20.x", 31, 128, 1);
    assert!(lambda_version(&association("origin-response"), &too_slow).is_err());
}

#[test]
fn unsupported_runtimes_are_named() {
    let old = version("nodejs16.x", 3, 128, 1);
    let err = lambda_version(&association("origin-request"), &old).unwrap_err();
    assert!(err
        .to_string()
        .contains("not supported by Lambda@Edge: nodejs16.x"));
}

#[test]
fn minimal_config_passes_and_reports_references() {
    let config = json!({
        "CallerReference": "r",
        "Aliases": {"Quantity": 1, "Items": ["www.shop.test"]},
        "Origins": {"Quantity": 1, "Items": [{"Id": "app", "DomainName": "app.test",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {"TargetOriginId": "app", "ViewerProtocolPolicy": "allow-all",
            "CachePolicyId": "p", "OriginRequestPolicyId": "o",
            "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
                "LambdaFunctionARN": "arn:aws:lambda:us-east-1:000000000000:function:f:3",
                "EventType": "origin-request"}]}},
        "Comment": "", "Enabled": true
    });
    let checked = distribution(&config, "us-east-1", "000000000000").unwrap();
    assert_eq!(checked.aliases, ["www.shop.test"]);
    assert_eq!(checked.cache_policies, ["p"]);
    assert_eq!(checked.origin_request_policies, ["o"]);
    assert_eq!(checked.associations[0].version, 3);
    let err = distribution(&config, "eu-west-1", "000000000000").unwrap_err();
    assert!(err.to_string().contains("region 'eu-west-1'"));
}
