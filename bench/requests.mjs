// requests.mjs — N requests of bench/chat.lua's body, one after another on one keep-alive
// connection (for profiles: a fixed count, unlike wrk's fixed duration). Exits non-zero on any
// non-2xx reply or a stream that does not end in [DONE] (response.completed for the Responses
// API: the same prompt as its `input`, to a URL ending in /v1/responses).
//   node bench/requests.mjs URL N [json|stream|responses|responses-stream]
// BENCH_KEY: the key sent as Authorization: Bearer (a gateway key when the gateway has auth).
// BENCH_HEADERS: more request headers, a JSON object ({"x-aigw-cache":"refresh"}).
import http from 'node:http';

const [url, n, mode] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const stream = mode === 'stream' || mode === 'responses-stream';
const responses = mode?.startsWith('responses');
const prompt = 'hello from the benchmark';
const body = JSON.stringify({ model: 'mock-model',
  ...(responses ? { input: prompt } : { messages: [{ role: 'user', content: prompt }] }),
  ...(stream ? { stream: true } : {}) });
const streamEnd = responses ? 'event: response.completed' : 'data: [DONE]';
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const one = () => new Promise((resolve, reject) => {
  const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json',
    authorization: `Bearer ${process.env.BENCH_KEY || 'bench-key'}`, 'content-length': Buffer.byteLength(body),
    ...JSON.parse(process.env.BENCH_HEADERS || '{}') } }, (res) => {
    const parts = [];
    res.on('data', (d) => parts.push(d));
    res.on('end', () => {
      const text = Buffer.concat(parts).toString();
      if (res.statusCode !== 200 || (stream && !text.includes(streamEnd))) reject(new Error(`${res.statusCode} ${text}`));
      else resolve();
    });
  });
  req.on('error', reject);
  req.end(body);
});
for (let i = 0; i < n; i++) await one();
agent.destroy();
