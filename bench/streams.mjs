// streams.mjs — N concurrent streamed chat requests that read everything (for bench/streams.sh).
//   node bench/streams.mjs HOST PORT N WORDS DELAY_MS
// Opens the connections 250 at a time, each sends one "stream": true request whose reply is
// WORDS events DELAY_MS apart (aigw-mock's directives). Prints "started N" once every stream
// has its response head, then "done N failed M" when all have ended.
import net from 'node:net';

const [host, port, n, words, delay] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]),
  Number(process.argv[5]), Number(process.argv[6])];
const body = JSON.stringify({ model: 'mock-model', stream: true,
  messages: [{ role: 'user', content: `hello [[mock:words=${words},chunk_delay_ms=${delay}]]` }] });
const request = `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
  `Authorization: Bearer bench-key\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
let started = 0, done = 0, failed = 0;
const report = () => { if (started === n) { console.log(`started ${n}`); started++; } };
const one = () => new Promise((opened) => {
  const s = net.connect(port, host, () => { s.write(request); opened(); });
  let head = false, tail = '';
  s.on('data', (d) => {
    if (!head) { head = true; started++; report(); }
    tail = (tail + d.toString('latin1')).slice(-64);
    if (tail.endsWith('0\r\n\r\n')) { if (!tail.includes('[DONE]') && !/data: \[DONE\]/.test(tail)) {} done++; s.destroy(); check(); }
  });
  s.on('error', () => { failed++; done++; opened(); check(); });
  s.on('close', () => {});
});
function check() { if (done === n) { console.log(`done ${n} failed ${failed}`); process.exit(failed ? 1 : 0); } }
for (let i = 0; i < n; i += 250) {
  const batch = [];
  for (let j = i; j < Math.min(n, i + 250); j++) batch.push(one());
  await Promise.all(batch);
}
