// A small Node application instrumented with the real @sentry/node, for tests/e2e/test_node_sdk.py.
//
// It reports to the relay named by SENTRY_DSN and uses the SDK as a server application would: an error with
// the user, a tag and extra data on the scope; a text attachment; logs; spans with a database query; a cron
// check-in; user feedback; trace metrics; an HTTP request to its own server (request-mode release health); and an
// event its beforeSend drops (so a client report has something to say). The personal values it plants come from
// PLANTED (JSON, set by the test) so that the test and the app agree on them.
//
// Every request the SDK's own transport makes is recorded, as it went on the wire (gzip and all), with the
// relay's answer: one JSON line per request in the file RECORD_FILE. SENTRY_TRACE_LIFECYCLE (read by the SDK
// itself) picks streamed spans (v11's default) or transactions ("static").
import { appendFileSync } from "node:fs";
import * as http from "node:http";

import * as Sentry from "@sentry/node";

const planted = JSON.parse(process.env.PLANTED);
const recordFile = process.env.RECORD_FILE;

/** node:http with `request` wrapped to record each request's headers, body bytes and answer. */
const recordingHttp = {
  ...http,
  request(options, callback) {
    const chunks = [];
    const record = (status) =>
      appendFileSync(
        recordFile,
        `${JSON.stringify({ headers: options.headers, body: Buffer.concat(chunks).toString("base64"), status })}\n`,
      );
    const req = http.request(options, (res) => {
      record(res.statusCode);
      callback?.(res);
    });
    req.on("error", () => record(null));
    const write = req.write.bind(req);
    const end = req.end.bind(req);
    req.write = (chunk, ...rest) => {
      chunks.push(Buffer.from(chunk));
      return write(chunk, ...rest);
    };
    req.end = (chunk, ...rest) => {
      if (chunk && typeof chunk !== "function") {
        chunks.push(Buffer.from(chunk));
      }
      return end(chunk, ...rest);
    };
    return req;
  },
};

Sentry.init({
  dsn: process.env.SENTRY_DSN,
  release: "shop@1.4.2",
  environment: "e2e",
  sendDefaultPii: true, // as many server apps set it: request data, the user's IP
  tracesSampleRate: 1.0,
  enableLogs: true,
  sendClientReports: true,
  transport: (options) => Sentry.makeNodeTransport({ ...options, httpModule: recordingHttp }),
  beforeSend: (event) => (event.message === "health check noise" ? null : event),
});

// An HTTP server of the app: an incoming request gets a request-mode session (and a server span).
const server = http.createServer((req, res) => {
  Sentry.captureException(new Error("signup failed: address already taken"));
  res.writeHead(409, { "content-type": "text/plain" });
  res.end("taken");
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address();

Sentry.setUser({ email: planted.user_email, ip_address: planted.user_ip });
Sentry.setTag("plan", "pro");
Sentry.setTag("customer", planted.tag_email);
Sentry.setExtra("payment", { password: planted.password, card_number: planted.card });
console.log("sending the receipt to", planted.console_email); // a console breadcrumb

const errorId = Sentry.withScope((scope) => {
  Sentry.getCurrentScope().addAttachment({ filename: "notes.txt", data: planted.attachment_text });
  return Sentry.captureException(new Error(`could not charge ${planted.error_email}`));
});
Sentry.captureMessage("health check noise"); // dropped by beforeSend, counted in a client report

Sentry.logger.info(Sentry.logger.fmt`password reset mail sent to ${planted.log_param_email}`, {
  customer: planted.log_attribute_email,
});
Sentry.logger.warn("cart abandoned", { "cart.items": 3 });
Sentry.logger.error(Sentry.logger.fmt`payment declined for order ${"A-1043"}`);

await Sentry.startSpan({ name: "checkout", op: "function" }, async () => {
  await Sentry.startSpan(
    { name: planted.sql, op: "db", attributes: { "db.system": "postgresql", "db.system.name": "postgresql" } },
    async () => new Promise((resolve) => setTimeout(resolve, 5)),
  );
  Sentry.metrics.count("checkout.failed", 1, { attributes: { customer: planted.metric_email } });
  Sentry.metrics.distribution("checkout.duration", 12.5, { unit: "millisecond" });
});

await Sentry.withMonitor("nightly-export", async () => new Promise((resolve) => setTimeout(resolve, 5)), {
  schedule: { type: "crontab", value: "0 3 * * *" },
  checkinMargin: 5,
  maxRuntime: 30,
  timezone: "Europe/Vienna",
});

Sentry.captureFeedback({
  message: planted.feedback_message,
  email: planted.feedback_email,
  name: planted.feedback_name,
  associatedEventId: errorId,
});

const answer = await fetch(`http://127.0.0.1:${port}/signup?email=${encodeURIComponent(planted.query_email)}`);
await answer.text();
await new Promise((resolve) => server.close(resolve));

const flushed = await Sentry.flush(10000);
process.exit(flushed ? 0 : 3);
