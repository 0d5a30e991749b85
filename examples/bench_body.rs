//! Writes a request body shaped like one Claude Code sends mid-session, of about `SIZE` bytes,
//! to stdout: a long system prompt, a set of tools with JSON schemas, a message history of user
//! turns, assistant turns with `tool_use` blocks and `tool_result` blocks, and `"stream": true`
//! at the end, where Claude Code puts it. With `long`, `max_tokens` is 2000: the benchmark mock
//! then answers with a stream of 2,000 events.
//!
//! `cargo run --release --example bench_body -- SIZE [long] > body.json`

use std::io::Write;

use serde_json::{Value, json};

fn tool(i: usize) -> Value {
    json!({
        "name": format!("Tool{i}"),
        "description": "Reads, searches or edits files in the working directory. ".repeat(6),
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "The absolute path of the file"},
                "pattern": {"type": "string", "description": "A regular expression to search for"},
                "limit": {"type": "integer", "description": "How many lines to read at most"}
            },
            "required": ["path"]
        }
    })
}

fn turn(i: usize) -> [Value; 3] {
    let code = "fn main() {\n    println!(\"hello from line {}\");\n}\n".repeat(20);
    [
        json!({"role": "user", "content": [{"type": "text", "text": format!("Step {i}: look at src/lib.rs and fix the failing test.")}]}),
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "I'll read the file first."},
            {"type": "tool_use", "id": format!("toolu_{i:08}"), "name": "Tool0", "input": {"path": "/work/src/lib.rs"}}
        ]}),
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{i:08}"), "content": code}
        ]}),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(180_000);
    let long = args.next().as_deref() == Some("long");
    let system = "You are Claude Code, Anthropic's official CLI for Claude. ".repeat(100);
    let tools: Vec<Value> = (0..16).map(tool).collect();
    let mut messages: Vec<Value> = Vec::new();
    let mut body = String::new();
    for i in 0.. {
        messages.extend(turn(i));
        // Written by hand: the fields in Claude Code's order, `stream` last.
        body = format!(
            "{{\"model\":\"bench-model\",\"max_tokens\":{},\"system\":{},\"tools\":{},\
             \"messages\":{},\"stream\":true}}",
            if long { 2000 } else { 16 },
            json!([{"type": "text", "text": system}]),
            Value::from(tools.clone()),
            Value::from(messages.clone()),
        );
        if body.len() >= size {
            break;
        }
    }
    let mut out = std::io::stdout().lock();
    if out
        .write_all(body.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .is_err()
    {
        std::process::exit(1);
    }
}
