/**
 * The embedded node's GC lock, as Kubo has one: writes that end in a pin
 * (add, put, pin add, block put with pin) hold it shared, block removal holds
 * it alone. Without it a block removed between an add's write of it and the
 * add's pin left a pinned blob incomplete. First come, first served, so a
 * stream of adds cannot starve a removal, nor removals an add.
 */
export class GcLock {
  #sharedHolders = 0;
  #exclusiveHeld = false;
  readonly #queue: { exclusive: boolean; start: () => void }[] = [];

  /** Runs fn while no removal runs; any number of shared holders at once. */
  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.#run(false, fn);
  }

  /** Runs fn alone. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#run(true, fn);
  }

  async #run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((start) => {
      this.#queue.push({ exclusive, start });
      this.#admit();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.#exclusiveHeld = false;
      else this.#sharedHolders--;
      this.#admit();
    }
  }

  #admit(): void {
    for (let next = this.#queue[0]; next !== undefined && !this.#exclusiveHeld; next = this.#queue[0]) {
      if (next.exclusive && this.#sharedHolders > 0) return;
      this.#queue.shift();
      if (next.exclusive) this.#exclusiveHeld = true;
      else this.#sharedHolders++;
      next.start();
    }
  }
}
