import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSchedule, requestTurn, slotTurn } from "../../src/protocol/schedule.ts";

const at = (iso: string) => Date.parse(iso) / 1000;

test("cron: the latest slot at or before now", () => {
  const every5 = parseSchedule("*/5 * * * *");
  assert.equal(every5.previous(at("2026-12-03T10:07:30Z")), at("2026-12-03T10:05:00Z"));
  assert.equal(every5.previous(at("2026-12-03T10:05:00Z")), at("2026-12-03T10:05:00Z"));
  const daily = parseSchedule("30 2 * * *");
  assert.equal(daily.previous(at("2026-12-03T01:00:00Z")), at("2026-12-02T02:30:00Z"));
  const weekdays = parseSchedule("0 9 * * 1-5");
  assert.equal(weekdays.previous(at("2026-12-06T12:00:00Z")), at("2026-12-04T09:00:00Z"), "Sunday → Friday 09:00");
  const list = parseSchedule("0,30 * * * *");
  assert.equal(list.previous(at("2026-12-03T10:29:59Z")), at("2026-12-03T10:00:00Z"));
});

test("@every and bad schedules", () => {
  const s = parseSchedule("@every 10s");
  assert.equal(s.previous(1005), 1000);
  assert.equal(s.slotIndex(1000), 100);
  for (const bad of ["* * * *", "61 * * * *", "*/0 * * * *", "@every 0s", "@hourly", "a b c d e"]) assert.throws(() => parseSchedule(bad), /cron|schedule|@every|field/, bad);
});

test("turns: the slot's candidate at once, the next after the deadline, around the list", () => {
  const s = parseSchedule("@every 10s");
  const c = ["0xA", "0xB", "0xC"];
  // slot 1000 has index 100; 100 % 3 = 1: B's turn.
  assert.deepEqual(slotTurn(s, 1000, c, "0xb", 60), { mine: true, eligibleAt: 1000 });
  assert.deepEqual(slotTurn(s, 1000, c, "0xC", 60), { mine: false, eligibleAt: 1060 });
  assert.deepEqual(slotTurn(s, 1000, c, "0xA", 60), { mine: false, eligibleAt: 1120 });
  assert.equal(slotTurn(s, 1000, c, "0xD", 60), undefined);
});

test("a requested run: its number picks the first candidate, its block time starts the deadlines", () => {
  const c = ["0xA", "0xB", "0xC"];
  // request 4: 4 % 3 = 1, B's turn at the request's time; C after one deadline, A after two.
  assert.deepEqual(requestTurn(4, 5000, c, "0xB", 30), { mine: true, eligibleAt: 5000 });
  assert.deepEqual(requestTurn(4, 5000, c, "0xc", 30), { mine: false, eligibleAt: 5030 });
  assert.deepEqual(requestTurn(4, 5000, c, "0xA", 30), { mine: false, eligibleAt: 5060 });
  assert.deepEqual(requestTurn(5, 5000, c, "0xC", 30), { mine: true, eligibleAt: 5000 }, "the next request goes to the next candidate");
  assert.equal(requestTurn(4, 5000, c, "0xD", 30), undefined);
});
