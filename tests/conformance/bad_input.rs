//! Bad client input over a raw socket: every case ends in a clean 4xx or a closed connection,
//! reaches no upstream, and the relay keeps serving everyone else.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::fixture::{
    Provider, SECOND, ask, assert_answer, assert_bound, fault, human, relay, shared, within,
};
use crate::harness::{TestRelay, message};
use crate::report::{Row, record};

/// `server.max_body_bytes` of the relay under test.
const MAX_BODY: usize = 1024 * 1024;

/// What a raw client got back before the relay closed the connection.
#[derive(Debug)]
struct Raw {
    /// The status of the first response, if one came.
    status: Option<u16>,
    /// Everything read.
    text: String,
    /// The relay closed the connection (EOF or reset) within the wait.
    closed: bool,
    elapsed: Duration,
}

impl Raw {
    /// The first response's body as JSON (`Null` when it is not).
    fn json(&self) -> Value {
        let body = self
            .text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or(Value::Null)
    }

    fn responses(&self) -> usize {
        self.text.matches("HTTP/1.1 ").count()
    }

    /// A 4xx with an Anthropic error body of this type.
    fn is_anthropic_error(&self, status: u16, kind: &str) -> bool {
        let body = self.json();
        self.status == Some(status) && body["type"] == "error" && body["error"]["type"] == kind
    }

    /// A 4xx of any kind, or the connection closed without a response.
    fn is_refused(&self) -> bool {
        self.closed
            && self
                .status
                .is_none_or(|status| (400..500).contains(&status))
    }

    fn summary(&self) -> String {
        match self.status {
            Some(status) => {
                let kind = self.json()["error"]["type"].as_str().map(str::to_owned);
                let closed = if self.closed {
                    ", connection closed"
                } else {
                    ""
                };
                match kind {
                    Some(kind) => format!("{status} {kind}{closed}"),
                    None => format!("{status} (hyper, empty body){closed}"),
                }
            }
            None if self.closed => "connection closed without a response".to_owned(),
            None => "nothing yet, connection open".to_owned(),
        }
    }
}

/// Writes `request` (while reading, as a real client does) and reads until the relay closes
/// the connection or `wait` is up.
async fn raw(relay: &TestRelay, request: Vec<u8>, wait: Duration) -> Raw {
    let address = relay.url.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // A write may fail once the relay has answered and closed; the answer is what counts.
    let writing: JoinHandle<_> = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        writer
    });
    let mut text = Vec::new();
    let mut buffer = vec![0; 16 * 1024];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .is_ok();
    writing.abort();
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Raw {
        status,
        text,
        closed,
        elapsed: started.elapsed(),
    }
}

fn post(headers: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\n\
         anthropic-version: 2023-06-01\r\nconnection: close\r\n{headers}\r\n"
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

fn with_length(body: &[u8]) -> Vec<u8> {
    post(&format!("content-length: {}\r\n", body.len()), body)
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut chunks = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunks.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunks.extend_from_slice(chunk);
        chunks.extend_from_slice(b"\r\n");
    }
    chunks.extend_from_slice(b"0\r\n\r\n");
    post("transfer-encoding: chunked\r\n", &chunks)
}

const VALID: &str =
    r#"{"model":"claude-test","max_tokens":8,"messages":[{"role":"user","content":"Hi"}]}"#;

/// What a case must end in.
#[derive(Clone, Copy)]
enum Refusal {
    /// The relay's own Anthropic error: this status and error type.
    Anthropic(u16, &'static str),
    /// hyper's: any 4xx or a closed connection.
    Protocol,
}

/// One bad request, what it must end in, and why it ends so where that is not obvious.
struct Case {
    id: &'static str,
    input: &'static str,
    request: Vec<u8>,
    refusal: Refusal,
    note: &'static str,
}

fn case(id: &'static str, input: &'static str, request: Vec<u8>, refusal: Refusal) -> Case {
    Case {
        id,
        input,
        request,
        refusal,
        note: "",
    }
}

fn cases() -> Vec<Case> {
    let invalid_json = Refusal::Anthropic(400, "invalid_request_error");
    let too_large = Refusal::Anthropic(413, "request_too_large");
    let mut huge = br#"{"model":"claude-test","pad":""#.to_vec();
    huge.resize(2 * MAX_BODY, b'x');
    let big_header = format!(
        "x-padding: {}\r\ncontent-length: 2\r\n",
        "a".repeat(100 * 1024)
    );
    // The classic smuggling shape: a front proxy honouring content-length sees one request,
    // a back end honouring transfer-encoding two. The relay must never run the second.
    let smuggled = format!(
        "0\r\n\r\nPOST /v1/messages HTTP/1.1\r\nhost: relay\r\ncontent-length: {}\r\n\r\n{VALID}",
        VALID.len()
    );
    let conflicting = format!(
        "content-length: {}\r\ntransfer-encoding: chunked\r\n",
        smuggled.len()
    );
    vec![
        case(
            "18a",
            "a body that is not JSON",
            with_length(b"this is not json"),
            invalid_json,
        ),
        case(
            "18b",
            "truncated JSON",
            with_length(&VALID.as_bytes()[..40]),
            invalid_json,
        ),
        Case {
            note: "refused on the header, before any of the body",
            ..case(
                "18c",
                "`content-length: 104857600` (100 MiB, limit 1 MiB)",
                post("content-length: 104857600\r\n", b""),
                too_large,
            )
        },
        case(
            "18d",
            "a 2 MiB chunked body, no content-length (limit 1 MiB)",
            chunked(&huge),
            too_large,
        ),
        case(
            "18e",
            "a 100 KiB header",
            post(&big_header, b"{}"),
            Refusal::Protocol,
        ),
        case(
            "18f",
            "a header line without a colon",
            post("this line has no colon\r\ncontent-length: 2\r\n", b"{}"),
            Refusal::Protocol,
        ),
        case(
            "18g",
            "a control character in a header name",
            post("x-bad\u{1}name: v\r\ncontent-length: 2\r\n", b"{}"),
            Refusal::Protocol,
        ),
        case(
            "18h",
            "two different content-lengths",
            post("content-length: 2\r\ncontent-length: 3\r\n", b"{}x"),
            Refusal::Protocol,
        ),
        Case {
            note: "hyper follows RFC 9112 §6.1: transfer-encoding wins, content-length is \
                   dropped and the connection is closed after the answer; the (empty) chunked \
                   body got its 400, the smuggled request never ran",
            ..case(
                "18i",
                "`content-length` and `transfer-encoding: chunked` together, a second request \
                 smuggled behind the chunked body",
                post(&conflicting, smuggled.as_bytes()),
                Refusal::Protocol,
            )
        },
    ]
}

#[tokio::test]
async fn bad_client_input_gets_a_clean_4xx_or_a_closed_connection_and_others_are_served() {
    let _gate = shared().await;
    let upstream = fault("ok").await;
    let relay = relay(
        &[Provider::at("only", &upstream)],
        &format!("server:\n  max_body_bytes: {MAX_BODY}\n"),
    )
    .await;
    let mut ended = Vec::new();
    for case in cases() {
        let got = raw(&relay, case.request.clone(), 3 * SECOND).await;
        match case.refusal {
            Refusal::Anthropic(status, kind) => {
                assert!(
                    got.is_anthropic_error(status, kind),
                    "{}: {got:?}",
                    case.input
                );
            }
            Refusal::Protocol => assert!(got.is_refused(), "{}: {got:?}", case.input),
        }
        assert!(
            got.responses() <= 1,
            "{}: more than one answer: {got:?}",
            case.input
        );
        assert_bound(got.elapsed, SECOND, case.input);
        ended.push((case, got));
    }
    assert_eq!(
        upstream.attempt_count(),
        0,
        "bad input reached the upstream"
    );
    // And the relay serves everyone else.
    assert_answer(&ask(&relay, &message(false)).await, "only");
    assert_answer(&ask(&relay, &message(true)).await, "only");
    for (case, got) in &ended {
        record(Row {
            id: case.id,
            scenario: "bad client input",
            configuration: format!("raw TCP: {}; `server.max_body_bytes: 1048576`", case.input),
            expected: "a clean 4xx (or the connection closed); the relay keeps serving others",
            outcome: format!(
                "{}{}{}; nothing reached the upstream; the next requests were answered",
                got.summary(),
                if case.note.is_empty() { "" } else { " — " },
                case.note
            ),
            time: got.elapsed,
            bound: SECOND,
        });
    }
    relay.stop().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_holds_only_its_own_connection() {
    let _gate = shared().await;
    let upstream = fault("ok").await;
    let relay = relay(&[Provider::at("only", &upstream)], "").await;
    let address = relay.url.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.unwrap();
    let partial = post("content-length: 400\r\n", &VALID.as_bytes()[..20]);
    slow.write_all(&partial).await.unwrap();
    // While that body hangs, others are served.
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for stream in [false, true, false, true, false] {
        let reply = ask(&relay, &message(stream)).await;
        assert_answer(&reply, "only");
        slowest = slowest.max(reply.elapsed);
    }
    let served = started.elapsed();
    assert_eq!(
        upstream.attempt_count(),
        5,
        "the unfinished request went upstream"
    );
    // The slow client gives up; nothing of it is left behind.
    drop(slow);
    assert_answer(&ask(&relay, &message(false)).await, "only");
    within(SECOND, "relay idle", relay.router.races_finished()).await;
    assert_bound(slowest, SECOND, "the others' answers");
    record(Row {
        id: "18j",
        scenario: "bad client input",
        configuration: "raw TCP: `content-length: 400`, 20 bytes of body, then nothing".to_owned(),
        expected: "a clean 4xx (or the connection closed); the relay keeps serving others",
        outcome: format!(
            "while it hangs, 5 other requests are answered (slowest {}, all 5 in {}); it never \
             reaches the upstream; the relay answers 408 after its body-read timeout (row 18k)",
            human(slowest),
            human(served)
        ),
        time: slowest,
        bound: SECOND,
    });
    relay.stop().await;
}

#[tokio::test]
async fn a_slow_client_is_cut_off_by_the_read_timeouts() {
    let _gate = shared().await;
    let upstream = fault("ok").await;
    let relay = relay(
        &[Provider::at("only", &upstream)],
        "server:\n  body_read_timeout: 1s\n  header_read_timeout: 1s\n",
    )
    .await;
    let wait = 5 * SECOND;
    let slow_body = raw(
        &relay,
        post("content-length: 400\r\n", &VALID.as_bytes()[..20]),
        wait,
    );
    let slow_headers = raw(
        &relay,
        b"POST /v1/messages HTTP/1.1\r\nhost: relay\r\n".to_vec(),
        wait,
    );
    let (slow_body, slow_headers) = tokio::join!(slow_body, slow_headers);
    assert!(
        slow_body.is_anthropic_error(408, "invalid_request_error"),
        "{slow_body:?}"
    );
    assert!(slow_body.elapsed >= SECOND, "{slow_body:?}");
    assert!(slow_headers.is_refused(), "{slow_headers:?}");
    assert!(slow_headers.elapsed >= SECOND, "{slow_headers:?}");
    assert_eq!(upstream.attempt_count(), 0);
    assert_answer(&ask(&relay, &message(false)).await, "only");
    for (id, input, reply, bound) in [
        (
            "18k",
            "`content-length: 400`, 20 bytes of body, then nothing",
            &slow_body,
            2 * SECOND,
        ),
        (
            "18l",
            "request headers that never finish",
            &slow_headers,
            2 * SECOND,
        ),
    ] {
        assert_bound(reply.elapsed, bound, input);
        record(Row {
            id,
            scenario: "bad client input (slow client)",
            configuration: format!(
                "raw TCP: {input}; `server.body_read_timeout: 1s`, `server.header_read_timeout: 1s` \
                 (defaults 60 s and 30 s)"
            ),
            expected: "a clean 4xx (or the connection closed); the relay keeps serving others",
            outcome: format!("{} after {}", reply.summary(), human(reply.elapsed)),
            time: reply.elapsed,
            bound,
        });
    }
    relay.stop().await;
}
