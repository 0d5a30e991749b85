//! The signer against AWS's published SigV4 test vectors (the `aws-sig-v4-test-suite`, also
//! shipped as `aws-signing-test-suite/v4` with the `aws-sigv4` crate): each case's request,
//! its expected canonical request and signature. Credentials `AKIDEXAMPLE`, region
//! `us-east-1`, service `service`, time 2015-08-30T12:36:00Z.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;

const KEY: SigningKey<'static> = SigningKey {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token: None,
};

fn vector_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

const HOST: (&str, &str) = ("Host", "example.amazonaws.com");

/// Signs a vector's request and checks the canonical request (when given) and the signature.
fn check(request: &Unsigned<'_>, key: &SigningKey<'_>, canonical: Option<&str>, signature: &str) {
    let signed = sign(key, "us-east-1", "service", vector_time(), request);
    assert_eq!(signed.amz_date, "20150830T123600Z");
    if let Some(expected) = canonical {
        let (actual, _) = canonical_request(request, &signed.amz_date, key.session_token);
        assert_eq!(actual, expected);
    }
    assert!(
        signed
            .authorization
            .ends_with(&format!("Signature={signature}")),
        "{}",
        signed.authorization
    );
}

fn get(
    path: &'static str,
    query: &'static str,
    headers: &'static [(&str, &str)],
) -> Unsigned<'static> {
    Unsigned {
        method: "GET",
        path,
        query,
        headers,
        payload: b"",
    }
}

#[test]
fn get_vanilla() {
    let request = get("/", "", &[HOST]);
    check(
        &request,
        &KEY,
        Some(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    );
    let signed = sign(&KEY, "us-east-1", "service", vector_time(), &request);
    assert_eq!(
        signed.authorization,
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn post_vanilla() {
    let request = Unsigned {
        method: "POST",
        ..get("/", "", &[HOST])
    };
    check(
        &request,
        &KEY,
        None,
        "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    );
}

#[test]
fn get_vanilla_query_order_key_case() {
    check(
        &get("/", "Param2=value2&Param1=value1", &[HOST]),
        &KEY,
        Some(
            "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    );
}

#[test]
fn get_unreserved() {
    check(
        &get(
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            "",
            &[HOST],
        ),
        &KEY,
        None,
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    );
}

#[test]
fn get_utf8() {
    check(
        &get("/\u{1234}", "", &[HOST]),
        &KEY,
        Some(
            "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    );
}

#[test]
fn get_space_unnormalized() {
    check(
        &get("/example space/", "", &[HOST]),
        &KEY,
        None,
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    );
}

#[test]
fn get_header_value_trim() {
    check(
        &get(
            "/",
            "",
            &[
                HOST,
                ("My-Header1", " value1"),
                ("My-Header2", " \"a   b   c\""),
            ],
        ),
        &KEY,
        Some(
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n\
             x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
    );
}

#[test]
fn post_header_key_sort() {
    let request = Unsigned {
        method: "POST",
        ..get("/", "", &[HOST, ("My-Header1", "value1")])
    };
    check(
        &request,
        &KEY,
        None,
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    );
}

#[test]
fn post_x_www_form_urlencoded_signs_the_payload_hash() {
    let request = Unsigned {
        method: "POST",
        path: "/",
        query: "",
        headers: &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            HOST,
            ("Content-Length", "13"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
        ],
        payload: b"Param1=value1",
    };
    check(
        &request,
        &KEY,
        Some(
            "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\n\
             host:example.amazonaws.com\n\
             x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\n\
             x-amz-date:20150830T123600Z\n\n\
             content-length;content-type;host;x-amz-content-sha256;x-amz-date\n\
             9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
        ),
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
    );
}

#[test]
fn get_vanilla_with_session_token() {
    let key = SigningKey {
        session_token: Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        ..KEY
    };
    check(
        &get("/", "", &[HOST]),
        &key,
        Some(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\
             x-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\n\
             host;x-amz-date;x-amz-security-token\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
    );
}

#[test]
fn double_encode_path_encodes_an_encoded_path_once_more() {
    // The suite's `double-encode-path` case: a non-S3 service encodes the sent path again.
    assert_eq!(
        canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
        "/test/%40connections/JBDvjfGEIAMCERw%253D"
    );
    // A Bedrock model id, sent with `:` encoded.
    assert_eq!(
        canonical_uri("/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke"),
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%253A0/invoke"
    );
}

#[test]
fn amz_dates_are_utc_calendar_dates() {
    assert_eq!(amz_date(UNIX_EPOCH), "19700101T000000Z");
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "20000229T000000Z"
    );
    assert_eq!(
        amz_date(UNIX_EPOCH + Duration::from_secs(4_102_444_799)),
        "20991231T235959Z"
    );
}
