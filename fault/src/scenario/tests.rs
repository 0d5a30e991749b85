use super::*;

fn parse(text: &str) -> Scenario {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn error(text: &str) -> ScenarioError {
    text.parse::<Scenario>().expect_err(text)
}

#[test]
fn empty_text_and_ok_are_the_default_answer() {
    assert_eq!(parse(""), Scenario::default());
    assert_eq!(parse("ok"), Scenario::default());
    assert_eq!(parse(" ok , model_echo "), Scenario::default());
    assert_eq!(Scenario::default().to_string(), "ok");
}

#[test]
fn answer_options_combine() {
    let Scenario::Answer(answer) =
        parse("words=3,name=b,first_event_delay_ms=20,malformed_after=2,stall_after=4")
    else {
        panic!("expected an answer");
    };
    assert_eq!(answer.words, 3);
    assert_eq!(answer.name.as_deref(), Some("b"));
    assert_eq!(answer.first_event_delay, Duration::from_millis(20));
    assert_eq!(answer.ending, Ending::StallAfter(4));
    assert_eq!(answer.malformed_after, Some(2));
}

#[test]
fn status_takes_retry_after_and_message() {
    let expected = ErrorReply {
        retry_after: Some(3),
        message: Some("prompt is too long: 300000 tokens > 200000 maximum".to_owned()),
        ..ErrorReply::new(StatusCode::TOO_MANY_REQUESTS)
    };
    assert_eq!(
        parse(
            "status=429,retry_after=3,message=prompt is too long: 300000 tokens > 200000 maximum"
        ),
        Scenario::Error(expected)
    );
}

#[test]
fn down_for_and_fail_first_default_their_status_and_keep_answer_options() {
    assert_eq!(
        parse("down_for_ms=60000,words=3"),
        Scenario::DownFor {
            duration: Duration::from_secs(60),
            error: ErrorReply::new(StatusCode::SERVICE_UNAVAILABLE),
            then: Answer {
                words: 3,
                ..Answer::default()
            },
        }
    );
    assert_eq!(
        parse("fail_first=2"),
        Scenario::FailFirst {
            count: 2,
            error: ErrorReply::new(StatusCode::INTERNAL_SERVER_ERROR),
            then: Answer::default(),
        }
    );
}

#[test]
fn down_for_and_fail_first_pick_the_reply_by_uptime_and_attempt() {
    let down = parse("down_for_ms=100");
    assert!(matches!(
        down.reply(0, Duration::from_millis(99)),
        Reply::Error(_)
    ));
    assert!(matches!(
        down.reply(0, Duration::from_millis(100)),
        Reply::Answer(_)
    ));
    let fail = parse("fail_first=1,status=529");
    assert!(matches!(fail.reply(0, Duration::ZERO), Reply::Error(e) if e.status.as_u16() == 529));
    assert!(matches!(fail.reply(1, Duration::ZERO), Reply::Answer(_)));
}

#[test]
fn display_writes_canonical_text_that_parses_back() {
    for text in [
        "ok",
        "words=3,name=a,headers_delay_ms=5,first_event_delay_ms=6,event_delay_ms=7,cut_after=4,malformed_after=2",
        "stall_after=0",
        "status=529,retry_after=2,message=Overloaded,headers_delay_ms=10,name=x",
        "reset",
        "reset,headers_delay_ms=50",
        "silent",
        "error_event",
        "redirect_to=http://127.0.0.1:9/v1/messages",
        "down_for_ms=60000,words=3",
        "down_for_ms=100,status=529",
        "fail_first=1,status=500",
        "fail_first=2,status=429,retry_after=1,words=2",
    ] {
        assert_eq!(parse(text).to_string(), text);
    }
    assert_eq!(
        parse("retry_after=1,status=429").to_string(),
        "status=429,retry_after=1"
    );
}

#[test]
fn unknown_key_is_named_with_the_valid_keys() {
    let e = error("status=503,bogus=1");
    assert_eq!(
        e,
        ScenarioError::UnknownKey {
            key: "bogus".to_owned()
        }
    );
    let message = e.to_string();
    assert!(message.contains("`bogus`"), "{message}");
    assert!(
        message.contains("stall_after") && message.contains("fail_first"),
        "{message}"
    );
}

#[test]
fn malformed_items_are_rejected() {
    assert_eq!(
        error("status"),
        ScenarioError::MissingValue { key: "status" }
    );
    assert_eq!(
        error("words="),
        ScenarioError::MissingValue { key: "words" }
    );
    assert_eq!(
        error("reset=1"),
        ScenarioError::UnexpectedValue { key: "reset" }
    );
    assert_eq!(
        error("words=1,words=2"),
        ScenarioError::Duplicate { key: "words" }
    );
    assert!(matches!(
        error("words=many"),
        ScenarioError::InvalidValue { key: "words", .. }
    ));
    assert!(matches!(
        error("status=200"),
        ScenarioError::InvalidValue { key: "status", .. }
    ));
    assert!(matches!(
        error("status=abc"),
        ScenarioError::InvalidValue { key: "status", .. }
    ));
}

#[test]
fn keys_that_do_not_combine_are_rejected() {
    assert_eq!(
        error("reset,silent"),
        ScenarioError::Conflict {
            first: "reset",
            second: "silent"
        }
    );
    assert_eq!(
        error("cut_after=1,stall_after=2"),
        ScenarioError::Conflict {
            first: "cut_after",
            second: "stall_after"
        }
    );
    assert_eq!(
        error("redirect_to=http://x/,status=503"),
        ScenarioError::NotAllowed {
            key: "status",
            kind: "redirect_to"
        }
    );
    assert_eq!(
        error("silent,words=2"),
        ScenarioError::NotAllowed {
            key: "words",
            kind: "silent"
        }
    );
    assert_eq!(
        error("status=500,words=2"),
        ScenarioError::NotAllowed {
            key: "words",
            kind: "status"
        }
    );
    assert_eq!(
        error("retry_after=2"),
        ScenarioError::NotAllowed {
            key: "retry_after",
            kind: "ok"
        }
    );
}
