wrk.method = "POST"
wrk.body = '{"model":"bench-model","max_tokens":16,"messages":[{"role":"user","content":"Hi"}]}'
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
