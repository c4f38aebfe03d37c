/**
 * How much text a program controls may go into its error record. A program
 * decides what it throws (and V8's messages quote its source), so without a
 * bound a program could make its error record as large as its memory limit,
 * whatever the task's maxOutputBytes. The text is cut to
 * min(MAX_PROGRAM_TEXT_CHARS, maxOutputBytes) UTF-16 code units, never inside a
 * surrogate pair, and a marker says how long it was.
 */
import type { TaskLimits } from "../../protocol/task.ts";

export const MAX_PROGRAM_TEXT_CHARS = 512;

export function programTextBudget(limits: TaskLimits): number {
  return Math.min(MAX_PROGRAM_TEXT_CHARS, limits.maxOutputBytes);
}

/** `text`, or its first characters when it (or the text it was cut from, `fullLength` long) is over the budget. */
export function programText(text: string, limits: TaskLimits, fullLength = text.length): string {
  const budget = programTextBudget(limits);
  if (text.length <= budget && fullLength <= text.length) return text;
  const end = budget > 0 && (text.charCodeAt(budget - 1) & 0xfc00) === 0xd800 ? budget - 1 : budget;
  return `${text.slice(0, end)}… [cut to ${end} of ${Math.max(fullLength, text.length)} characters]`;
}
