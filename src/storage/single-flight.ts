/**
 * Runs an operation once per key at a time: callers that ask for a key while
 * its operation is running share that run's result instead of starting
 * another. The file stores write each entry through one temp file, and racing
 * writers of one entry stall on rename retries.
 */
export function singleFlight<T>(): (key: string, operation: () => Promise<T>) => Promise<T> {
  const running = new Map<string, Promise<T>>();
  return async (key, operation) => {
    const pending = running.get(key);
    if (pending !== undefined) return pending;
    const run = operation();
    running.set(key, run);
    try {
      return await run;
    } finally {
      if (running.get(key) === run) running.delete(key);
    }
  };
}
