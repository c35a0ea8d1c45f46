-- chat.lua — wrk script: POST a small chat completion (BENCH_STREAM=1 for "stream": true).
-- For Portkey, BENCH_CUSTOM_HOST adds its provider and custom-host headers; BENCH_CONFIG sends
-- a config in x-portkey-config with every request; BENCH_KEY is the key sent (a gateway key for
-- aigw-keys).
wrk.method = "POST"
local stream = os.getenv("BENCH_STREAM") == "1"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"hello from the benchmark"}]'
    .. (stream and ',"stream":true' or '') .. '}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "bench-key")
local custom_host = os.getenv("BENCH_CUSTOM_HOST")
if custom_host and custom_host ~= "" then
    wrk.headers["x-portkey-provider"] = "openai"
    wrk.headers["x-portkey-custom-host"] = custom_host
end
local config = os.getenv("BENCH_CONFIG")
if config and config ~= "" then
    wrk.headers["x-portkey-config"] = config
end
