// The unchanged npm `openai` SDK's Responses client against the gateway (run by gateway/tests/agents.rs).
// LLM_GATEWAY_URL is the gateway's /v1 base. Prints one JSON line with what the SDK parsed, plain and streamed,
// for the Rust test to check; exits non-zero when the SDK throws. With MODE=stream_only it streams once and
// reports whether the SDK raised (the test breaks the upstream stream before or after its first delta).
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.LLM_GATEWAY_URL, apiKey: "gateway-test-key", maxRetries: 0, timeout: 20000 });

if (process.env.MODE === "stream_only") {
  const types = [];
  let deltas = "";
  let raised = null;
  try {
    const s = await client.responses.create({ model: "default", input: "Tell me about fallbacks", stream: true });
    for await (const event of s) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") deltas += event.delta;
    }
  } catch (e) {
    raised = { name: e?.constructor?.name ?? "Error", message: String(e?.message ?? e) };
  }
  console.log(JSON.stringify({ types, deltas, raised }));
  process.exit(0);
}

const plain = await client.responses.create({ model: "default", input: "Tell me about fallbacks", instructions: "Be brief." });

const stream = await client.responses.create({ model: "default", input: "Tell me about fallbacks", stream: true });
const types = [];
const sequence = [];
let deltas = "";
let completed = null;
for await (const event of stream) {
  types.push(event.type);
  sequence.push(event.sequence_number);
  if (event.type === "response.output_text.delta") deltas += event.delta;
  if (event.type === "response.completed") completed = event.response;
}

console.log(
  JSON.stringify({
    plain: { id: plain.id, status: plain.status, output_text: plain.output_text, usage: plain.usage, model: plain.model },
    stream: {
      types,
      sequence,
      deltas,
      completed_status: completed?.status ?? null,
      completed_text: completed?.output_text ?? completed?.output?.[0]?.content?.[0]?.text ?? null,
      usage: completed?.usage ?? null,
    },
  }),
);
