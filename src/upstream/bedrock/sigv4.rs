//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for a request to a service other than S3: the
//! canonical request, the string to sign, the derived key and the `authorization` header.
//!
//! Pure: the time is a parameter. HMAC-SHA256 and SHA-256 come from `ring`, which the relay
//! already links for TLS. Checked against AWS's published test vectors in the tests below.

use std::time::{SystemTime, UNIX_EPOCH};

use ring::{digest, hmac};

/// The credentials a request is signed with.
#[derive(Clone)]
pub(crate) struct SigningKey<'a> {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: &'a str,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: &'a str,
    /// `AWS_SESSION_TOKEN`, for temporary credentials: sent and signed as
    /// `x-amz-security-token`.
    pub session_token: Option<&'a str>,
}

/// What is signed of a request.
pub(crate) struct Unsigned<'a> {
    /// `GET`, `POST`…
    pub method: &'a str,
    /// The path as it is sent (already percent-encoded): the canonical URI encodes it once more.
    pub path: &'a str,
    /// The query string as sent, without `?` (empty: none).
    pub query: &'a str,
    /// The headers to sign, `host` included (names in any case; `x-amz-date` and
    /// `x-amz-security-token` are added).
    pub headers: &'a [(&'a str, &'a str)],
    /// The body.
    pub payload: &'a [u8],
}

/// The headers that carry a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// `x-amz-date`: `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `authorization`.
    pub authorization: String,
}

/// Signs `request` for `service` in `region` at `time`.
pub(crate) fn sign(
    key: &SigningKey<'_>,
    region: &str,
    service: &str,
    time: SystemTime,
    request: &Unsigned<'_>,
) -> Signed {
    let amz_date = amz_date(time);
    let date = &amz_date[..8];
    let (canonical, signed_headers) = canonical_request(request, &amz_date, key.session_token);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let mut signing_key = format!("AWS4{}", key.secret_access_key).into_bytes();
    for part in [date, region, service, "aws4_request"] {
        signing_key = hmac_sha256(&signing_key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&signing_key, string_to_sign.as_bytes()));
    Signed {
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, \
             Signature={signature}",
            key.access_key_id
        ),
        amz_date,
    }
}

/// The canonical request and its signed-headers list.
pub(crate) fn canonical_request(
    request: &Unsigned<'_>,
    amz_date: &str,
    session_token: Option<&str>,
) -> (String, String) {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .collect();
    headers.push(("x-amz-date".to_owned(), amz_date.to_owned()));
    if let Some(token) = session_token {
        headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical = format!(
        "{}\n{}\n{}\n",
        request.method,
        canonical_uri(request.path),
        canonical_query(request.query)
    );
    for (name, value) in &headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&signed_headers);
    canonical.push('\n');
    canonical.push_str(&hex(
        digest::digest(&digest::SHA256, request.payload).as_ref()
    ));
    (canonical, signed_headers)
}

/// The path with every byte but unreserved ones and `/` percent-encoded: for a service other
/// than S3 the path as sent is encoded again (`%3A` becomes `%253A`).
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    encode(path, true)
}

/// The query's parameters sorted by name then value, each name and value encoded.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (encode(&decode(name), false), encode(&decode(value), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value trimmed, its runs of spaces collapsed to one.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// RFC 3986 encoding as SigV4 defines it: unreserved characters stay, every other byte is
/// `%XX` (upper-case hex); `/` stays when `keep_slash`.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(byte & 0xf)]));
        }
    }
    out
}

/// Percent-decodes a query component (`+` is left alone, as AWS does).
fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` in UTC (a time before 1970 is taken as 1970).
pub(crate) fn amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests;
