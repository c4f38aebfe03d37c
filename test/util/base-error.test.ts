import assert from "node:assert/strict";
import { test } from "node:test";
import { CloisterError, isCloisterError } from "../../src/util/base-error.ts";

class WidgetError extends CloisterError<"WIDGET_BROKEN" | "WIDGET_MISSING"> {}

test("a module's error keeps its class name, code, short message and details", () => {
  const e = new WidgetError("WIDGET_MISSING", "no widget at /x: create one with 'widget new'", { details: { path: "/x" } });
  assert.ok(e instanceof WidgetError && e instanceof CloisterError && isCloisterError(e));
  assert.equal(e.name, "WidgetError");
  assert.equal(e.code, "WIDGET_MISSING");
  assert.equal(e.message, e.shortMessage);
  assert.deepEqual(e.details, { path: "/x" });
});

test("toJSON carries the cause chain's codes and messages, not their stacks", () => {
  const root = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
  const e = new WidgetError("WIDGET_BROKEN", "the widget service is down", { cause: new WidgetError("WIDGET_MISSING", "inner", { cause: root }) });
  const json = e.toJSON();
  assert.deepEqual(json.causes, [
    { name: "WidgetError", code: "WIDGET_MISSING", message: "inner" },
    { name: "Error", code: "ECONNREFUSED", message: "connect ECONNREFUSED 127.0.0.1:1" },
  ]);
  assert.equal(JSON.stringify(json).includes("at "), false);
  assert.equal(isCloisterError(root), false);
});
