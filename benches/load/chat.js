// k6 scenario: chat completions at a constant arrival rate (open model, so latency
// percentiles are honest under load). Env: TARGET (base URL ending in /v1), RATE (req/s),
// DURATION (e.g. 10s), STREAM (1 for SSE streams), MODEL.
import http from 'k6/http';
import { check } from 'k6';

const rate = parseInt(__ENV.RATE || '500');

export const options = {
  discardResponseBodies: false,
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
const body = JSON.stringify({
  model: __ENV.MODEL || 'gpt-4o-mini',
  stream: stream,
  messages: [
    { role: 'system', content: 'You are the storefront assistant of Acme Outdoor.' },
    { role: 'user', content: 'Do you have the trail runner 2 in size 44, and when would it ship to Lyon?' },
  ],
});
const params = {
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${__ENV.TOKEN || 'load-test'}` },
};

export default function () {
  const res = http.post(`${__ENV.TARGET}/chat/completions`, body, params);
  check(res, {
    'status 200': (r) => r.status === 200,
    'complete': (r) => (stream ? r.body.includes('[DONE]') : r.body.includes('"usage"')),
  });
}
