// k6 scenario: one tool call at a constant arrival rate, either straight to the backend
// (KIND=direct: the HTTP request Warden would make) or through Warden (KIND=warden:
// POST /v1/tools/{TOOL}/invoke). Env: TARGET (base URL), RATE, DURATION, KIND, TOOL
// (get_price: catalog pricing, results redacted by patterns; lookup_order: an order with
// customer data, results read by the NER model — the same order each time, so cached).
import http from 'k6/http';
import { check } from 'k6';

const rate = parseInt(__ENV.RATE || '500');

export const options = {
  discardResponseBodies: false,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max'],
  scenarios: {
    tools: {
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: Math.max(20, Math.ceil(rate / 20)),
      maxVUs: Math.max(200, rate),
    },
  },
};

const cases = {
  get_price: { path: '/pricing/products/P1001', args: { product_id: 'P1001' } },
  lookup_order: { path: '/orders/A70000', args: { order_id: 'A70000' } },
};
const tool = __ENV.TOOL || 'get_price';
const call = cases[tool];
const body = JSON.stringify({ arguments: call.args });
const params = { headers: { 'Content-Type': 'application/json' } };

export default function () {
  const res = __ENV.KIND === 'direct'
    ? http.get(`${__ENV.TARGET}${call.path}`)
    : http.post(`${__ENV.TARGET}/v1/tools/${tool}/invoke`, body, params);
  check(res, {
    'status 200': (r) => r.status === 200,
    'a result': (r) => __ENV.KIND === 'direct' || r.body.includes('"is_error":false'),
  });
}
