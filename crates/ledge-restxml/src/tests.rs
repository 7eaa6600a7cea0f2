use serde_json::json;

use super::*;

/// The minimal CreateDistribution body of apis.md §3.3, on one line per element.
const EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DistributionConfig xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <CallerReference>ledge-doc-0001</CallerReference>
  <Aliases><Quantity>1</Quantity><Items><CNAME>www.shop.test</CNAME></Items></Aliases>
  <DefaultRootObject>index.html</DefaultRootObject>
  <Origins><Quantity>1</Quantity><Items>
    <Origin>
      <Id>app</Id><DomainName>app.internal.test</DomainName><OriginPath>/v2</OriginPath>
      <CustomHeaders><Quantity>1</Quantity><Items>
        <OriginCustomHeader><HeaderName>X-From-Edge</HeaderName><HeaderValue>ledge &amp; co &#x263A;</HeaderValue></OriginCustomHeader>
      </Items></CustomHeaders>
      <CustomOriginConfig>
        <HTTPPort>8081</HTTPPort><HTTPSPort>443</HTTPSPort>
        <OriginProtocolPolicy>http-only</OriginProtocolPolicy>
        <OriginReadTimeout>10</OriginReadTimeout><OriginKeepaliveTimeout>5</OriginKeepaliveTimeout>
      </CustomOriginConfig>
      <ConnectionAttempts>2</ConnectionAttempts><ConnectionTimeout>3</ConnectionTimeout>
    </Origin>
  </Items></Origins>
  <DefaultCacheBehavior>
    <TargetOriginId>app</TargetOriginId>
    <ViewerProtocolPolicy>redirect-to-https</ViewerProtocolPolicy>
    <AllowedMethods><Quantity>3</Quantity><Items><Method>GET</Method><Method>HEAD</Method><Method>OPTIONS</Method></Items>
      <CachedMethods><Quantity>2</Quantity><Items><Method>GET</Method><Method>HEAD</Method></Items></CachedMethods>
    </AllowedMethods>
    <Compress>true</Compress>
    <LambdaFunctionAssociations><Quantity>1</Quantity><Items>
      <LambdaFunctionAssociation>
        <LambdaFunctionARN>arn:aws:lambda:us-east-1:111122223333:function:hello:3</LambdaFunctionARN>
        <EventType>viewer-request</EventType><IncludeBody>false</IncludeBody>
      </LambdaFunctionAssociation>
    </Items></LambdaFunctionAssociations>
    <CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId>
  </DefaultCacheBehavior>
  <Comment>docs example</Comment>
  <Enabled>true</Enabled>
</DistributionConfig>"#;

fn model() -> &'static ServiceModel {
    ServiceModel::cloudfront().unwrap()
}

fn decode(xml: &str) -> Result<Value, XmlError> {
    model().decode("DistributionConfig", "DistributionConfig", xml.as_bytes())
}

#[test]
fn decodes_into_botocore_form() {
    let v = decode(EXAMPLE).unwrap();
    assert_eq!(
        v["Aliases"],
        json!({"Quantity": 1, "Items": ["www.shop.test"]})
    );
    assert_eq!(v["Enabled"], json!(true));
    let origin = &v["Origins"]["Items"][0];
    assert_eq!(origin["CustomOriginConfig"]["HTTPPort"], json!(8081));
    assert_eq!(
        origin["CustomHeaders"]["Items"][0]["HeaderValue"],
        json!("ledge & co \u{263A}")
    );
    let b = &v["DefaultCacheBehavior"];
    assert_eq!(
        b["AllowedMethods"]["CachedMethods"]["Items"],
        json!(["GET", "HEAD"])
    );
    assert_eq!(
        b["LambdaFunctionAssociations"]["Items"][0]["EventType"],
        json!("viewer-request")
    );
}

#[test]
fn encode_gives_back_what_was_decoded() {
    let v = decode(EXAMPLE).unwrap();
    let xml = model().encode("DistributionConfig", "DistributionConfig", &v);
    assert!(xml.starts_with(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DistributionConfig xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"><CallerReference>"
    ));
    assert!(xml.contains("<HeaderValue>ledge &amp; co \u{263A}</HeaderValue>"));
    assert_eq!(decode(&xml).unwrap(), v);
    // The model's member order, whatever order the value's keys are in.
    let mut shuffled = Map::new();
    for (k, val) in v.as_object().unwrap().iter().rev() {
        shuffled.insert(k.clone(), val.clone());
    }
    let again = model().encode(
        "DistributionConfig",
        "DistributionConfig",
        &Value::Object(shuffled),
    );
    assert_eq!(again, xml);
}

#[test]
fn refuses_dtds_and_entities() {
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
        <DistributionConfig><Comment>&lol2;</Comment></DistributionConfig>"#;
    let err = decode(bomb).unwrap_err();
    assert_eq!(err.code(), "MalformedInput");
    assert!(err.to_string().contains("DTD"));
    let err =
        decode("<DistributionConfig><Comment>&lol;</Comment></DistributionConfig>").unwrap_err();
    assert_eq!(err.code(), "MalformedInput");
}

#[test]
fn refuses_malformed_documents() {
    for (xml, code) in [
        ("", "MalformedInput"),
        ("<DistributionConfig>", "MalformedInput"),
        ("<DistributionConfig></Other>", "MalformedInput"),
        ("<a/><b/>", "MalformedInput"),
        ("\u{0}\u{ff}", "MalformedInput"),
        ("<Other/>", "MalformedXML"),
    ] {
        assert_eq!(decode(xml).unwrap_err().code(), code, "{xml:?}");
    }
    let deep = format!(
        "{}{}",
        "<a>".repeat(MAX_DEPTH + 1),
        "</a>".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(decode(&deep).unwrap_err().code(), "MalformedInput");
}

#[test]
fn refuses_what_does_not_fit_the_shape() {
    let cases = [
        (
            EXAMPLE.replace("<Comment>docs example</Comment>", ""),
            "Missing required element Comment",
        ),
        (
            EXAMPLE.replace("<Enabled>true</Enabled>", "<Enabled>yes</Enabled>"),
            "Invalid value",
        ),
        (
            EXAMPLE.replace(
                "<EventType>viewer-request</EventType>",
                "<EventType>viewer-req</EventType>",
            ),
            "Invalid value",
        ),
        (
            EXAMPLE.replace("<Comment>", "<Bogus>1</Bogus><Comment>"),
            "Unexpected element Bogus",
        ),
        (
            EXAMPLE.replace(
                "<CNAME>www.shop.test</CNAME>",
                "<Alias>www.shop.test</Alias>",
            ),
            "expected CNAME",
        ),
        (
            EXAMPLE.replace(
                "<Comment>docs example</Comment>",
                "<Comment>a</Comment><Comment>b</Comment>",
            ),
            "twice",
        ),
        (
            EXAMPLE.replace("2020-05-31/\"", "2019-03-26/\""),
            "namespace",
        ),
        (
            EXAMPLE.replace("<HTTPPort>8081</HTTPPort>", "<HTTPPort>80x</HTTPPort>"),
            "Invalid value",
        ),
    ];
    for (xml, reason) in cases {
        let err = decode(&xml).unwrap_err();
        assert_eq!(err.code(), "MalformedXML", "{reason}: {err}");
        assert!(err.to_string().contains(reason), "{reason}: {err}");
    }
    // A document without a namespace is accepted.
    let bare = EXAMPLE.replace(
        " xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"",
        "",
    );
    assert!(decode(&bare).is_ok());
}

#[test]
fn quantity_must_match_items() {
    let xml = EXAMPLE.replace(
        "<Aliases><Quantity>1</Quantity>",
        "<Aliases><Quantity>2</Quantity>",
    );
    let err = decode(&xml).unwrap_err();
    assert_eq!(err.code(), "InconsistentQuantities");
    let xml = EXAMPLE.replace(
        "<Aliases><Quantity>1</Quantity><Items><CNAME>www.shop.test</CNAME></Items></Aliases>",
        "<Aliases><Quantity>1</Quantity></Aliases>",
    );
    assert_eq!(decode(&xml).unwrap_err().code(), "InconsistentQuantities");
    let xml = EXAMPLE.replace(
        "<Aliases><Quantity>1</Quantity><Items><CNAME>www.shop.test</CNAME></Items></Aliases>",
        "<Aliases><Quantity>0</Quantity></Aliases>",
    );
    assert!(decode(&xml).is_ok());
}

#[test]
fn knows_the_operations() {
    let op = model().operation("UpdateDistribution").unwrap();
    assert_eq!(op.method, "PUT");
    assert_eq!(op.request_uri, "/2020-05-31/distribution/{Id}/config");
    assert_eq!(
        model()
            .operation("CreateDistribution")
            .unwrap()
            .response_code,
        201
    );
}
