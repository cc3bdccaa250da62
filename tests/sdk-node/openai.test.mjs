// Client compatibility: the official `openai` npm package pointed at Warden with only
// `baseURL` changed — chat (whole and streamed, with usage), embeddings, a tool call round
// trip, the Responses API (create, stream, a conversation by id), and the SDK's error
// classes. Starts its own Warden (WARDEN_BIN) on free 127.0.0.1 ports, with API keys.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";

const MODEL = "gpt-4o-mini";
const KEY = "sk-warden-node-suite";
const EMAIL = "jane.doe@example.com";

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let warden;
let baseURL;

before(async () => {
  const binary = process.env.WARDEN_BIN;
  assert.ok(binary, "WARDEN_BIN must point at the warden binary");
  const dir = mkdtempSync(join(tmpdir(), "warden-node-"));
  const digest = createHash("sha256").update(KEY).digest("hex");
  writeFileSync(
    join(dir, "warden.yaml"),
    `providers:
  mock:
    kind: mock
models:
  ${MODEL}:
    targets:
      - provider: mock
  text-embedding-3-small:
    targets:
      - provider: mock
pii:
  default_profile: shop
  profiles:
    shop:
      actions: {EMAIL: pseudonymize}
auth:
  api_keys:
    - {id: node-suite, sha256: ${digest}, tenant: acme}
`,
  );
  const [port, admin] = [await freePort(), await freePort()];
  const log = openSync(join(dir, "warden.log"), "w");
  warden = spawn(
    binary,
    ["serve", "--config", join(dir, "warden.yaml"), "--listen", `127.0.0.1:${port}`, "--admin-listen", `127.0.0.1:${admin}`],
    { stdio: ["ignore", "ignore", log] },
  );
  const deadline = Date.now() + 15000;
  for (;;) {
    assert.equal(warden.exitCode, null, `warden exited; see ${dir}/warden.log`);
    try {
      if ((await fetch(`http://127.0.0.1:${admin}/readyz`)).ok) break;
    } catch {
      // not listening yet
    }
    assert.ok(Date.now() < deadline, "warden did not become ready");
    await new Promise((r) => setTimeout(r, 50));
  }
  baseURL = `http://127.0.0.1:${port}/v1`;
});

after(() => warden?.kill("SIGTERM"));

const client = () => new OpenAI({ baseURL, apiKey: KEY, maxRetries: 0 });

test("chat completions answer", async () => {
  const r = await client().chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "Where is my order?" }],
  });
  assert.equal(r.choices[0].message.content, "You said: Where is my order?");
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("a chat stream restores placeholders and ends with usage", async () => {
  const stream = await client().chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: `Mail ${EMAIL} please` }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    usage = chunk.usage ?? usage;
  }
  assert.equal(text, `You said: Mail ${EMAIL} please`);
  assert.ok(usage.completion_tokens > 0);
});

test("embeddings", async () => {
  const r = await client().embeddings.create({ model: "text-embedding-3-small", input: ["a", "b"] });
  assert.equal(r.data.length, 2);
  assert.equal(r.data[0].embedding.length, 64);
});

test("a tool call round trip", async () => {
  const tools = [
    {
      type: "function",
      function: {
        name: "check_inventory",
        parameters: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] },
      },
    },
  ];
  const messages = [{ role: "user", content: "check_inventory for SKU-9" }];
  const first = await client().chat.completions.create({ model: MODEL, messages, tools });
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "check_inventory");
  messages.push(first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "7 left" });
  const second = await client().chat.completions.create({ model: MODEL, messages, tools });
  assert.equal(second.choices[0].message.content, "Tool result received: 7 left");
});

test("the Responses API: create, stream and a conversation by id", async () => {
  const first = await client().responses.create({ model: MODEL, input: `My email is ${EMAIL}` });
  assert.equal(first.output_text, `You said: My email is ${EMAIL}`);
  const stream = client().responses.stream({
    model: MODEL,
    previous_response_id: first.id,
    input: "Please repeat my first message",
  });
  let deltas = "";
  stream.on("response.output_text.delta", (e) => {
    deltas += e.delta;
  });
  const final = await stream.finalResponse();
  assert.equal(deltas, `You first said: My email is ${EMAIL}`);
  assert.equal(final.output[0].content[0].text, deltas);
  assert.ok(final.usage.output_tokens > 0);
  const again = await client().responses.retrieve(first.id);
  assert.equal(again.output_text, first.output_text);
});

test("error classes", async () => {
  await assert.rejects(
    client().chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
    OpenAI.NotFoundError,
  );
  await assert.rejects(
    client().chat.completions.create({ model: MODEL, messages: [] }),
    OpenAI.BadRequestError,
  );
  await assert.rejects(
    client().responses.retrieve("resp_someone_elses"),
    OpenAI.NotFoundError,
  );
  const stranger = new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(
    stranger.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] }),
    OpenAI.AuthenticationError,
  );
});
