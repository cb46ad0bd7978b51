// Exercises llm-chaos through the unchanged npm package toxiproxy-node-client.
// Env: TOXIPROXY_URL (the API), UPSTREAM (an echo server host:port). Exits non-zero on the first failure.
"use strict";

const assert = require("node:assert/strict");
const net = require("node:net");
const { Toxiproxy } = require("toxiproxy-node-client");

const url = process.env.TOXIPROXY_URL;
const upstream = process.env.UPSTREAM;
let checks = 0;
const check = (fn) => {
  fn();
  checks += 1;
};

function echoThrough(listen, message) {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port }, () => sock.write(message));
    let got = "";
    sock.on("data", (d) => {
      got += d.toString();
      if (got.length >= message.length) {
        sock.end();
        resolve(got);
      }
    });
    sock.on("error", reject);
    sock.setTimeout(5000, () => reject(new Error("timeout")));
  });
}

async function main() {
  assert.ok(url && upstream, "TOXIPROXY_URL and UPSTREAM must be set");
  const toxiproxy = new Toxiproxy(url);

  const version = await toxiproxy.getVersion();
  check(() => assert.match(version, /2\.12\.0/));

  // create proxy
  const proxy = await toxiproxy.createProxy({ name: "node_api", listen: "127.0.0.1:0", upstream });
  check(() => assert.equal(proxy.name, "node_api"));
  check(() => assert.equal(proxy.enabled, true));
  check(() => assert.notEqual(proxy.listen, "127.0.0.1:0"));
  check(() => assert.equal(proxy.upstream, upstream));

  // add toxic
  const toxic = await proxy.addToxic({ type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 100, jitter: 5 } });
  check(() => assert.equal(toxic.name, "latency_downstream"));
  check(() => assert.deepEqual(toxic.attributes, { latency: 100, jitter: 5 }));
  const started = Date.now();
  const echoed = await echoThrough(proxy.listen, "ping");
  check(() => assert.equal(echoed, "ping"));
  // Toxiproxy's jitter is either side of the latency (100 ± 5 ms), and Date.now() counts whole milliseconds.
  check(() => assert.ok(Date.now() - started >= 100 - 5 - 1, "latency applied"));

  // update toxic (partial attributes) and read it back
  const updated = await toxic.update({ attributes: { latency: 200 }, toxicity: 0.5 });
  check(() => assert.deepEqual(updated.attributes, { latency: 200, jitter: 5 }));
  check(() => assert.equal(updated.toxicity, 0.5));
  const fetched = await proxy.getToxic("latency_downstream");
  check(() => assert.deepEqual(fetched.toJson(), updated.toJson()));

  // update proxy
  const disabled = await proxy.update({ enabled: false, listen: proxy.listen, upstream });
  check(() => assert.equal(disabled.enabled, false));
  const enabled = await disabled.update({ enabled: true, listen: proxy.listen, upstream });
  check(() => assert.equal(enabled.enabled, true));

  // list
  const all = await toxiproxy.getAll();
  check(() => assert.ok(all.node_api));
  check(() => assert.equal(all.node_api.listen, proxy.listen));

  // populate
  const populated = await toxiproxy.populate([{ name: "node_pop", listen: "127.0.0.1:0", upstream, enabled: true }]);
  check(() => assert.ok(populated.node_pop));
  const through = await echoThrough(populated.node_pop.listen, "populated");
  check(() => assert.equal(through, "populated"));
  const pop = await toxiproxy.get("node_pop");
  await pop.addToxic({ type: "timeout", stream: "upstream", toxicity: 1, attributes: { timeout: 0 } });
  await pop.update({ enabled: false, listen: pop.listen, upstream });

  // delete toxic and proxy
  await toxic.remove();
  await proxy.remove();
  await assert.rejects(toxiproxy.get("node_api"), /status code 404/);
  checks += 1;

  // reset
  await toxiproxy.reset();
  const afterReset = await toxiproxy.get("node_pop");
  check(() => assert.equal(afterReset.enabled, true));
  const toxics = await toxiproxy.getApi().get(`${url}/proxies/node_pop/toxics`);
  check(() => assert.deepEqual(toxics.data, []));

  console.log(`node client: ${checks} checks passed`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
