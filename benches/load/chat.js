// k6 scenario: chat completions (or, with API=responses, the Responses API) at a constant
// arrival rate (open model, so latency percentiles are honest under load). Env: TARGET
// (base URL ending in /v1), RATE (req/s), DURATION (e.g. 10s), STREAM (1 for SSE streams),
// INSECURE (1 to accept the harness's test certificate), MODEL, MODE:
//   plain  a short storefront question (the same body every time)
//   pii1   a one-turn support chat carrying a name, an e-mail address and a phone number;
//          each request's text is new (its order number), so the NER cache never helps
//   pii10  the 10th turn of a 10-turn support chat: nine earlier turns (the same in every
//          request, so cached after the first) and a new last message
// API=responses sends the plain question to POST /v1/responses (instructions and input).
import http from 'k6/http';
import { check } from 'k6';

const rate = parseInt(__ENV.RATE || '500');

export const options = {
  discardResponseBodies: false,
  // INSECURE=1: a TLS target with a certificate from a throwaway CA (benches/load/run.sh).
  insecureSkipTLSVerify: __ENV.INSECURE === '1',
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    chat: {
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: Math.max(20, Math.ceil(rate / 20)),
      maxVUs: Math.max(200, rate),
    },
  },
};

const stream = __ENV.STREAM === '1';
const mode = __ENV.MODE || 'plain';
const system = { role: 'system', content: 'You are the support assistant of Acme Outdoor.' };

// About 128 tokens of support text with personal data in it.
function supportMessage(n) {
  return `Hello, this is Maria Schneider. My order ORD-2026-${n} with the Alpine 40L backpack ` +
    `and two pairs of merino hiking socks (size 39-42) was supposed to arrive on Tuesday, but ` +
    `the tracking page has shown "in transit" for six days now. Could you check where it is and ` +
    `whether it can still be delivered before the weekend? You can reach me at ` +
    `maria.schneider@example.org or on +49 30 1234 5678 between 9 and 17. Thanks a lot!`;
}

const history = [system];
for (let turn = 1; turn <= 9; turn++) {
  history.push(turn % 2 === 0
    ? { role: 'user', content: supportMessage(1000 + turn) }
    : { role: 'assistant', content: `I have checked order ORD-2026-${1000 + turn}: the parcel is at the Leipzig hub and ships today.` });
}

const api = __ENV.API || 'chat';
const responsesBody = JSON.stringify({
  model: __ENV.MODEL || 'gpt-4o-mini',
  stream: stream,
  instructions: 'You are the storefront assistant of Acme Outdoor.',
  input: 'Do you have the trail runner 2 in size 44, and when would it ship to Lyon?',
});

const plainBody = JSON.stringify({
  model: __ENV.MODEL || 'gpt-4o-mini',
  stream: stream,
  messages: [
    { role: 'system', content: 'You are the storefront assistant of Acme Outdoor.' },
    { role: 'user', content: 'Do you have the trail runner 2 in size 44, and when would it ship to Lyon?' },
  ],
});

// Differs between runs (and VUs), so no text of one run is in the NER cache of another.
const salt = Math.floor(Math.random() * 1e9);

// A new body per iteration (PII modes): the order number makes the text new.
function body() {
  if (api === 'responses') {
    return responsesBody;
  }
  if (mode === 'plain') {
    return plainBody;
  }
  const n = `${salt}-${__VU}-${__ITER}`;
  const messages = mode === 'pii1'
    ? [system, { role: 'user', content: supportMessage(n) }]
    : history.concat([{ role: 'user', content: `Thanks. Please send the invoice for ORD-2026-${n} to maria.schneider@example.org as well.` }]);
  return JSON.stringify({ model: __ENV.MODEL || 'gpt-4o-mini', stream: stream, messages: messages });
}
const params = {
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${__ENV.TOKEN || 'load-test'}` },
};

const path = api === 'responses' ? 'responses' : 'chat/completions';
const end = api === 'responses' ? 'response.completed' : '[DONE]';

export default function () {
  const res = http.post(`${__ENV.TARGET}/${path}`, body(), params);
  check(res, {
    'status 200': (r) => r.status === 200,
    'complete': (r) => (stream ? r.body.includes(end) : r.body.includes('"usage"')),
  });
}
