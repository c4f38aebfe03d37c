/**
 * A chain follower's loop: one pass, then a pause, then the next pass, never
 * two passes at once; a pass that throws is reported and the loop goes on.
 * `stop` waits for the pass in progress.
 */
export interface PollLoop {
  readonly stopped: boolean;
  stop(): Promise<void>;
}

export function startPollLoop(pass: () => Promise<void>, options: { intervalMs: number; onError(error: unknown): void }): PollLoop {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let tick: Promise<void> = Promise.resolve();
  const loop = () => {
    if (stopped) return;
    tick = pass().catch(options.onError);
    void tick.then(() => {
      if (!stopped) timer = setTimeout(loop, options.intervalMs);
    });
  };
  loop();
  return {
    get stopped() {
      return stopped;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await tick;
    },
  };
}
