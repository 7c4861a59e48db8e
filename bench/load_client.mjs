// The load client of bench/serve_http.py, for Node 18 or later (no packages).
//
//   node bench/load_client.mjs PORT CONCURRENCY REQUESTS MAX_SECONDS CASES.jsonl
//
// CASES.jsonl holds {"text": ..., "expected": ...} lines. CONCURRENCY loops, each on
// its own keep-alive connection, send POST /predict {"texts": [text]} one after another,
// cycling through the cases, until REQUESTS are sent or MAX_SECONDS have passed; each
// answer's first prediction is compared with "expected" (parsed JSON, equal values).
// Prints one JSON line: {"sent", "seconds", "rate", "p50", "p99", "errors", "differing"}
// (latencies in ms). Node does in one thread with an event loop what Python threads
// do under the GIL, so the client takes far less of the CPU the server shares with it.

import fs from "node:fs";
import http from "node:http";
import { isDeepStrictEqual } from "node:util";

const [port, concurrency, requests, maxSeconds, casesFile] = process.argv.slice(2);
const cases = fs.readFileSync(casesFile, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line));
const bodies = cases.map((c) => Buffer.from(JSON.stringify({ texts: [c.text] })));
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const stopAt = performance.now() + Number(maxSeconds) * 1000;
const latencies = [];
let next = 0;
let errors = 0;
let differing = 0;

function send(i) {
  const body = bodies[i % bodies.length];
  const options = {
    host: "127.0.0.1", port: Number(port), path: "/predict", method: "POST", agent,
    headers: { "content-type": "application/json", "content-length": body.length },
  };
  return new Promise((resolve) => {
    const start = performance.now();
    const request = http.request(options, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        latencies.push(performance.now() - start);
        if (response.statusCode !== 200) errors++;
        else if (!isDeepStrictEqual(JSON.parse(Buffer.concat(chunks)).predictions[0],
                                    cases[i % cases.length].expected)) differing++;
        resolve();
      });
    });
    request.on("error", () => { errors++; resolve(); });
    request.end(body);
  });
}

async function loop() {
  while (next < Number(requests) && performance.now() < stopAt) await send(next++);
}

const start = performance.now();
await Promise.all(Array.from({ length: Number(concurrency) }, loop));
const seconds = (performance.now() - start) / 1000;
agent.destroy();
latencies.sort((a, b) => a - b);
const quantile = (q) => latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN;
console.log(JSON.stringify({ sent: latencies.length, seconds, rate: latencies.length / seconds,
                             p50: quantile(0.5), p99: quantile(0.99), errors, differing }));
