"""Drives the relay with the official Anthropic Python SDK: messages (plain and streamed), count_tokens, models."""
import anthropic
client = anthropic.Anthropic(base_url=__import__("os").environ["ANTHROPIC_BASE_URL"], api_key="anything", max_retries=0)
for i in range(4):
    msg = client.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hello"}])
    parsed = msg.parse()
    print("non-stream:", msg.headers.get("x-relayrace-provider"), msg.headers.get("x-relayrace-attempts"), parsed.content[0].text[:40], parsed.usage.output_tokens)
for i in range(3):
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "Hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        print("stream:", repr(text[:40]), final.stop_reason, final.usage.output_tokens)
print(client.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Hello there"}]))
print([m.id for m in client.models.list()])
