//! SigV4: AWS's published test-suite vectors (fixtures under
//! `tests/fixtures/sigv4/`), and sign/verify round trips for Bedrock paths.

use super::*;

const SUITE_CREDS: &str = "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_TOKEN: &str = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

/// 2015-08-30T12:36:00Z, the suite's signing time.
fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

/// A `.req` fixture: request line, `Name:value` headers, blank line, body.
struct FixtureRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn parse_req(text: &str) -> FixtureRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line.next().unwrap().to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect();
    FixtureRequest {
        method,
        path,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

macro_rules! fixture {
    ($name:literal) => {
        (
            include_str!(concat!("../../../tests/fixtures/sigv4/", $name, ".req")),
            include_str!(concat!("../../../tests/fixtures/sigv4/", $name, ".authz")),
        )
    };
}

/// Signs a fixture request (minus its X-Amz-Date) and checks the result
/// against the published Authorization; then verifies the signed request.
fn check_vector((req, authz): (&str, &str), creds: &str) {
    let creds = AwsCredentials::parse(creds).unwrap();
    let req = parse_req(req);
    let to_sign: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"))
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-security-token"))
        .cloned()
        .collect();
    let url = format!("https://example.amazonaws.com{}", req.path);
    let parts = SignableParts {
        method: &req.method,
        url: &url,
        headers: &to_sign,
        body: &req.body,
    };
    let added = sign(&parts, &creds, "us-east-1", "service", suite_time()).unwrap();
    assert_eq!(header(&added, "authorization"), Some(authz.trim()));
    assert_eq!(header(&added, "x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(
        header(&added, "x-amz-security-token"),
        creds.session_token.as_deref()
    );

    let mut received = req.headers.clone();
    received.push(("Authorization".into(), authz.trim().into()));
    assert!(verify(
        &req.method,
        &req.path,
        &received,
        &req.body,
        &creds,
        "us-east-1",
        "service"
    ));
}

#[test]
fn get_vanilla() {
    check_vector(fixture!("get-vanilla"), SUITE_CREDS);
}

#[test]
fn post_vanilla() {
    check_vector(fixture!("post-vanilla"), SUITE_CREDS);
}

#[test]
fn get_vanilla_query_order_key_case() {
    check_vector(fixture!("get-vanilla-query-order-key-case"), SUITE_CREDS);
}

#[test]
fn get_header_value_trim() {
    check_vector(fixture!("get-header-value-trim"), SUITE_CREDS);
}

#[test]
fn get_header_key_duplicate() {
    check_vector(fixture!("get-header-key-duplicate"), SUITE_CREDS);
}

#[test]
fn post_x_www_form_urlencoded() {
    check_vector(fixture!("post-x-www-form-urlencoded"), SUITE_CREDS);
}

#[test]
fn get_vanilla_with_session_token() {
    check_vector(
        fixture!("get-vanilla-with-session-token"),
        &format!("{SUITE_CREDS}:{SUITE_TOKEN}"),
    );
}

#[test]
fn verify_accepts_a_vector_that_signed_the_payload_header() {
    let (req, authz) = fixture!("post-x-www-form-urlencoded-signed-body");
    let creds = AwsCredentials::parse(SUITE_CREDS).unwrap();
    let req = parse_req(req);
    let mut received = req.headers.clone();
    received.push(("authorization".into(), authz.trim().into()));
    assert!(verify(
        "POST",
        "/",
        &received,
        &req.body,
        &creds,
        "us-east-1",
        "service"
    ));
    assert!(!verify(
        "POST",
        "/",
        &received,
        b"Param1=value2",
        &creds,
        "us-east-1",
        "service"
    ));
}

const MODEL: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const PATH: &str = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/invoke";
const HOST: &str = "bedrock-runtime.us-east-1.amazonaws.com";

/// Signs a Bedrock InvokeModel request; returns the headers as received.
fn signed_bedrock_request(creds: &AwsCredentials, body: &[u8]) -> Vec<(String, String)> {
    let url = super::super::invoke_url(&format!("https://{HOST}"), MODEL, false);
    assert_eq!(url, format!("https://{HOST}{PATH}"));
    let mut headers = vec![
        ("host".to_owned(), HOST.to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    let parts = SignableParts {
        method: "POST",
        url: &url,
        headers: &headers,
        body,
    };
    let added = sign(&parts, creds, "us-east-1", "bedrock", SystemTime::now()).unwrap();
    headers.extend(added);
    headers
}

#[test]
fn model_id_with_colon_signs_and_verifies() {
    let creds = AwsCredentials::parse("AKIDEXAMPLE:secret/key+1:token/with:colon").unwrap();
    assert_eq!(creds.session_token.as_deref(), Some("token/with:colon"));
    let body = br#"{"messages":[]}"#;
    let headers = signed_bedrock_request(&creds, body);
    assert!(header(&headers, "authorization")
        .unwrap()
        .contains("content-type;host;x-amz-date"));
    assert!(verify(
        "POST",
        PATH,
        &headers,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
    // The unencoded ':' is a different canonical URI, so a different signature.
    let raw = PATH.replace("%3A", ":");
    assert!(!verify(
        "POST",
        &raw,
        &headers,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
}

#[test]
fn canonical_uri_is_double_encoded() {
    // AWS's `double-url-encode` case: a Lambda ARN with ':' sent as %3A,
    // whose canonical URI carries %253A.
    let creds = AwsCredentials::parse(SUITE_CREDS).unwrap();
    let url = "https://lambda.us-east-2.amazonaws.com/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-west-2%3A892717189312%3Afunction%3Amy-rusty-fun/invocations";
    let time = parse_amz_date("20210511T154045Z").unwrap();
    let parts = SignableParts {
        method: "POST",
        url,
        headers: &[],
        body: b"",
    };
    let added = sign(&parts, &creds, "us-east-2", "lambda", time).unwrap();
    assert_eq!(
        header(&added, "authorization"),
        Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20210511/us-east-2/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=4b93abbcc68be32bd64c18e2c71150660ab4c29bbd6c32a383a7517a88fc1804")
    );
}

#[test]
fn tampering_fails_verify() {
    let creds = AwsCredentials::parse("AKID:SECRET").unwrap();
    let body = br#"{"messages":[]}"#;
    let headers = signed_bedrock_request(&creds, body);
    assert!(verify(
        "POST",
        PATH,
        &headers,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
    assert!(!verify(
        "POST",
        PATH,
        &headers,
        br#"{"messages":[1]}"#,
        &creds,
        "us-east-1",
        "bedrock"
    ));
    assert!(!verify(
        "PUT",
        PATH,
        &headers,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
    assert!(!verify(
        "POST",
        PATH,
        &headers,
        body,
        &creds,
        "us-west-2",
        "bedrock"
    ));
    let other = AwsCredentials::parse("AKID:OTHER").unwrap();
    assert!(!verify(
        "POST",
        PATH,
        &headers,
        body,
        &other,
        "us-east-1",
        "bedrock"
    ));
    let mut changed = headers.clone();
    for (name, value) in &mut changed {
        if name == "content-type" {
            *value = "text/plain".into();
        }
    }
    assert!(!verify(
        "POST",
        PATH,
        &changed,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
    let unsigned: Vec<_> = headers
        .iter()
        .filter(|(n, _)| n != "authorization")
        .cloned()
        .collect();
    assert!(!verify(
        "POST",
        PATH,
        &unsigned,
        body,
        &creds,
        "us-east-1",
        "bedrock"
    ));
}

#[test]
fn session_token_must_match() {
    let creds = AwsCredentials::parse("AKID:SECRET:TOKEN").unwrap();
    let headers = signed_bedrock_request(&creds, b"{}");
    assert_eq!(header(&headers, "x-amz-security-token"), Some("TOKEN"));
    assert!(verify(
        "POST",
        PATH,
        &headers,
        b"{}",
        &creds,
        "us-east-1",
        "bedrock"
    ));
    let other = AwsCredentials::parse("AKID:SECRET:OTHER").unwrap();
    assert!(!verify(
        "POST",
        PATH,
        &headers,
        b"{}",
        &other,
        "us-east-1",
        "bedrock"
    ));
    let none = AwsCredentials::parse("AKID:SECRET").unwrap();
    assert!(!verify(
        "POST",
        PATH,
        &headers,
        b"{}",
        &none,
        "us-east-1",
        "bedrock"
    ));
}

#[test]
fn parse_credentials() {
    let c = AwsCredentials::parse("AKID:SECRET").unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.secret_access_key.expose()),
        ("AKID", "SECRET")
    );
    assert_eq!(c.session_token, None);
    for bad in ["", "AKID", ":SECRET", "AKID:", "AKID:SECRET:"] {
        assert!(AwsCredentials::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn debug_hides_secrets() {
    let c = AwsCredentials::parse("AKID:SUPERSECRET:SESSIONTOKEN").unwrap();
    let shown = format!("{c:?} {}", c.secret_access_key);
    assert!(shown.contains("AKID"));
    assert!(!shown.contains("SUPERSECRET"));
    assert!(!shown.contains("SESSIONTOKEN"));
}

#[test]
fn url_without_host_is_refused() {
    let creds = AwsCredentials::parse("AKID:SECRET").unwrap();
    let parts = SignableParts {
        method: "GET",
        url: "/model/x/invoke",
        headers: &[],
        body: b"",
    };
    let err = sign(&parts, &creds, "us-east-1", "bedrock", SystemTime::now()).unwrap_err();
    assert!(matches!(err, SigningError::NoHost(_)));
}
