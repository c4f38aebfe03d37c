/** The guarded server: no handler error, sync or async, before or after the response starts, reaches the process. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createGuardedServer, HttpRequestError } from "../../src/util/guarded-http.ts";
import { listenOnLoopback } from "../../src/util/loopback-http.ts";

test("thrown, rejected and late errors reach the responder or cut the connection; the server keeps serving", async (t) => {
  const server = createGuardedServer({
    handle: async (_req, res, url) => {
      switch (url.pathname) {
        case "/sync":
          throw new HttpRequestError(418, "TEAPOT", "refused on purpose");
        case "/async":
          await new Promise((resolve) => setTimeout(resolve, 5));
          throw new Error("failed later");
        case "/started":
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("partial");
          throw new Error("failed mid-response");
        case "/responder-throws":
          throw new Error("responder-throws");
        default:
          res.end("ok");
      }
    },
    respondError: (res, err) => {
      if (err instanceof Error && err.message === "responder-throws") throw new Error("the responder itself failed");
      res.writeHead(err instanceof HttpRequestError ? err.status : 500);
      res.end(err instanceof Error ? err.message : String(err));
    },
  });
  const listening = await listenOnLoopback(server, "127.0.0.1", 0, (e) => e);
  t.after(() => listening.close());

  const sync = await fetch(`${listening.url}/sync`);
  assert.equal(sync.status, 418);
  assert.equal(await sync.text(), "refused on purpose");
  const later = await fetch(`${listening.url}/async`);
  assert.equal(later.status, 500);
  assert.equal(await later.text(), "failed later");
  // Once the status is out, a failure must not look like a complete (short) body.
  const started = await fetch(`${listening.url}/started`);
  assert.equal(started.status, 200);
  await assert.rejects(started.text());
  await assert.rejects(fetch(`${listening.url}/responder-throws`));
  assert.equal(await (await fetch(`${listening.url}/`)).text(), "ok");
});

test("a listening server's own errors (failed accepts) do not stop the process or the server", async (t) => {
  const server = createGuardedServer({ handle: (_req, res) => void res.end("ok"), respondError: (res) => res.destroy() });
  const listening = await listenOnLoopback(server, "127.0.0.1", 0, (e) => e);
  t.after(() => listening.close());
  // What net.Server emits when accept() fails, e.g. with every file descriptor taken.
  for (let i = 0; i < 3; i++) server.emit("error", Object.assign(new Error("accept EMFILE"), { code: "EMFILE", syscall: "accept" }));
  assert.equal(await (await fetch(listening.url)).text(), "ok");
});
