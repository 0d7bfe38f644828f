// Captures real @sentry/node payloads for bench/extcorpus: node capture.js < scenarios.json > items.jsonl
//
// Each scenario (see bench/extcorpus/scenario.py) is replayed as an HTTP request to a server on 127.0.0.1,
// so the SDK's own http integration fills in `request`. Inside the handler the scenario's scope data,
// breadcrumbs, spans and logs are set and an Error is captured. A custom transport keeps every envelope
// item; one JSON line {"scenario", "type", "payload"} is printed per event, transaction or log item.
"use strict";

const Sentry = require("@sentry/node");
const http = require("node:http");
const net = require("node:net");
const vm = require("node:vm");

const captured = [];
let current = null;

function keepEnvelope(request) {
  const text = typeof request.body === "string" ? request.body : Buffer.from(request.body).toString("utf8");
  const lines = text.split("\n");
  for (let i = 1; i + 1 < lines.length; i += 2) {
    const header = JSON.parse(lines[i]);
    if (!["session", "sessions", "client_report"].includes(header.type)) {
      captured.push({ scenario: current, type: header.type, payload: JSON.parse(lines[i + 1]) });
    }
  }
  return Promise.resolve({ statusCode: 200 });
}

Sentry.init({
  dsn: "http://public@127.0.0.1:9/1",
  transport: (options) => Sentry.createTransport(options, keepEnvelope),
  sendDefaultPii: true,
  includeLocalVariables: true,
  tracesSampleRate: 1.0,
  enableLogs: true,
  release: "checkout-api@2.8.1",
  environment: "production",
  serverName: "api-1",
  maxBreadcrumbs: 100,
  integrations: [Sentry.localVariablesIntegration({ captureAllExceptions: true, maxExceptionsPerSecond: 1e9 })],
});

// Generated functions with an app filename, so the SDK treats their frames as in-app and records their
// local variables (the LocalVariables integration captures in-app frames only).
function raiseIn(exc) {
  const frames = exc.functions && exc.functions.length ? exc.functions : ["handle"];
  const vars = exc.vars || {};
  const names = Object.keys(vars).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
  const lines = [];
  frames.forEach((fn, depth) => {
    lines.push(`function ${fn}() {`);
    if (depth + 1 < frames.length) {
      lines.push(`  return ${frames[depth + 1]}();`);
    } else {
      names.forEach((k, i) => lines.push(`  const ${k} = scenarioVars[${i}];`));
      lines.push("  const err = new Error(scenarioError.value);", "  err.name = scenarioError.type;", "  throw err;");
    }
    lines.push("}");
  });
  lines.push(`(${frames[0]})`);
  const entry = vm.runInThisContext(lines.join("\n"), { filename: exc.filename || "/srv/app/src/handlers.js" });
  try {
    globalThis.scenarioVars = names.map((k) => vars[k]);
    globalThis.scenarioError = exc;
    entry();
  } catch (err) {
    return err;
  }
  return null;
}

function handle(scenario, req, res) {
  const scope = Sentry.getCurrentScope();
  if (scenario.user) scope.setUser(scenario.user);
  for (const [k, v] of Object.entries(scenario.tags || {})) scope.setTag(k, v);
  for (const [k, v] of Object.entries(scenario.extra || {})) scope.setExtra(k, v);
  for (const [k, v] of Object.entries(scenario.contexts || {})) scope.setContext(k, v);
  for (const crumb of scenario.breadcrumbs || []) Sentry.addBreadcrumb(crumb);
  for (const log of scenario.logs || []) {
    const fn = Sentry.logger[log.level] || Sentry.logger.info;
    fn(log.body, log.attributes || {});
  }
  const finish = () => {
    if (scenario.exception) {
      Sentry.captureException(raiseIn(scenario.exception));
    } else if (scenario.message) {
      Sentry.captureMessage(scenario.message, "error");
    }
    res.writeHead(500, { "content-type": "text/plain" });
    res.end("error");
  };
  if (scenario.spans && scenario.spans.length) {
    Sentry.startSpan({ name: `${req.method} ${scenario.request ? scenario.request.path : "/"}`, op: "http.server" }, () => {
      for (const s of scenario.spans) Sentry.startSpan({ name: s.description, op: s.op, attributes: s.data || {} }, () => {});
      finish();
    });
  } else {
    finish();
  }
}

// A raw request over a socket: the exact headers the scenario names, and no client instrumentation.
function send(port, scenario) {
  const r = scenario.request || { method: "GET", path: "/", headers: {} };
  const body = Buffer.from(r.body || "", "utf8");
  const head = [`${r.method || "GET"} ${r.path}${r.query ? `?${r.query}` : ""} HTTP/1.1`, `Host: ${r.host || "api.example.com"}`];
  for (const [k, v] of Object.entries(r.headers || {})) head.push(`${k}: ${v}`);
  head.push(`Content-Length: ${body.length}`, "Connection: close", "", "");
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(Buffer.concat([Buffer.from(head.join("\r\n"), "latin1"), body]));
    });
    socket.on("data", () => {});
    socket.on("end", resolve);
    socket.on("error", reject);
  });
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const scenarios = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const byId = new Map(scenarios.map((s) => [s.id, s]));
  const server = http.createServer((req, res) => {
    req.resume();
    handle(byId.get(current), req, res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  await new Promise((resolve) => setTimeout(resolve, 1000)); // the local-variables worker attaches its debugger
  for (const scenario of scenarios) {
    current = scenario.id;
    await send(port, scenario);
    await Sentry.flush(2000);
  }
  server.close();
  await Sentry.close(2000);
  for (const item of captured) process.stdout.write(`${JSON.stringify(item)}\n`);
}

main().catch((err) => {
  process.stderr.write(`capture.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
